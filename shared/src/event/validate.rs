//! Business rules every event must satisfy, beyond what its JSON shape says.
//!
//! Rules collect every problem as `EventError::InvalidField` with the field's JSON path; the
//! decoder reports the first, an API can report them all.

use rust_decimal::Decimal;

use super::EventError;
use super::payload::{
    Address, EventPayload, InventoryOutOfStock, InventoryReserved, OrderCancelled, OrderConfirmed,
    OrderPlaced, PaymentFailed, PaymentProcessed,
};

/// A field's JSON path, built only when one of its rules is broken: checking a valid event
/// allocates nothing (`make bench`: formatting every path cost a record about 1.5 µs).
pub(crate) trait FieldPath {
    /// The path, e.g. `data.items[0].sku`.
    fn path(self) -> String;
}

impl FieldPath for &str {
    fn path(self) -> String {
        self.to_owned()
    }
}

impl<F: FnOnce() -> String> FieldPath for F {
    fn path(self) -> String {
        self()
    }
}

/// The problems found so far.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<EventError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(EventError::invalid(field, reason));
    }

    /// A required string must hold something other than white space.
    pub(crate) fn non_empty(&mut self, value: &str, field: impl FieldPath) {
        if value.trim().is_empty() {
            self.add(field.path(), "must not be empty");
        }
    }

    fn positive_quantity(&mut self, quantity: u32, field: impl FieldPath) {
        if quantity == 0 {
            self.add(field.path(), "must be at least 1");
        }
    }

    fn positive_amount(&mut self, amount: Decimal, field: impl FieldPath) {
        if amount <= Decimal::ZERO {
            self.add(
                field.path(),
                format!("must be greater than 0, got {amount}"),
            );
        }
    }

    fn currency(&mut self, code: &str, field: impl FieldPath) {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            self.add(
                field.path(),
                format!("`{code}` is not an ISO 4217 code such as `EUR`"),
            );
        }
    }

    /// A sanity check, not RFC 5322: one `@` with something on both sides and a dot in the
    /// domain.
    fn email_address(&mut self, email: &str, field: impl FieldPath) {
        let valid = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !email.contains(char::is_whitespace)
            }
            None => false,
        };
        if !valid {
            self.add(field.path(), format!("`{email}` is not an email address"));
        }
    }

    /// The shipping address of the payload at `at`.
    fn shipping_address(&mut self, a: &Address, at: &str) {
        self.non_empty(&a.name, || format!("{at}.shippingAddress.name"));
        self.non_empty(&a.line1, || format!("{at}.shippingAddress.line1"));
        self.non_empty(&a.city, || format!("{at}.shippingAddress.city"));
        self.non_empty(&a.postal_code, || {
            format!("{at}.shippingAddress.postalCode")
        });
        let country = &a.country;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            self.add(
                format!("{at}.shippingAddress.country"),
                format!("`{country}` is not an ISO 3166-1 alpha-2 code such as `DE`"),
            );
        }
    }

    /// Checks the rules of one payload; `at` is the JSON path of the payload (`"data"`).
    pub(crate) fn payload(&mut self, payload: &EventPayload, at: &str) {
        match payload {
            EventPayload::OrderPlaced(p) => self.order_placed(p, at),
            EventPayload::PaymentProcessed(p) => self.payment_processed(p, at),
            EventPayload::PaymentFailed(p) => self.payment_failed(p, at),
            EventPayload::InventoryReserved(p) => self.inventory_reserved(p, at),
            EventPayload::InventoryOutOfStock(p) => self.inventory_out_of_stock(p, at),
            EventPayload::OrderCancelled(p) => self.order_cancelled(p, at),
            EventPayload::OrderConfirmed(p) => self.order_confirmed(p, at),
        }
    }

    fn order_placed(&mut self, p: &OrderPlaced, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
        self.non_empty(&p.customer_id, || format!("{at}.customerId"));
        if p.items.is_empty() {
            self.add(format!("{at}.items"), "must hold at least one item");
        }
        if p.items.len() > super::MAX_ORDER_LINES {
            self.add(
                format!("{at}.items"),
                format!(
                    "holds {} lines; an order may hold at most {}",
                    p.items.len(),
                    super::MAX_ORDER_LINES
                ),
            );
        }
        let mut sum = Some(Decimal::ZERO);
        for (i, item) in p.items.iter().enumerate() {
            self.non_empty(&item.sku, || format!("{at}.items[{i}].sku"));
            self.positive_quantity(item.quantity, || format!("{at}.items[{i}].quantity"));
            self.positive_amount(item.unit_price, || format!("{at}.items[{i}].unitPrice"));
            sum = sum.and_then(|s| {
                s.checked_add(item.unit_price.checked_mul(Decimal::from(item.quantity))?)
            });
            if sum.is_none() {
                self.add(format!("{at}.items[{i}]"), "amount overflows");
            }
        }
        self.positive_amount(p.total, || format!("{at}.total"));
        if let Some(sum) = sum.filter(|s| *s != p.total && !p.items.is_empty()) {
            self.add(
                format!("{at}.total"),
                format!("is {} but the items add up to {}", p.total, sum.normalize()),
            );
        }
        self.currency(&p.currency, || format!("{at}.currency"));
        if let Some(email) = &p.customer_email {
            self.email_address(email, || format!("{at}.customerEmail"));
        }
        if let Some(address) = &p.shipping_address {
            self.shipping_address(address, at);
        }
    }

    fn payment_processed(&mut self, p: &PaymentProcessed, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
        self.non_empty(&p.payment_id, || format!("{at}.paymentId"));
        self.positive_amount(p.amount, || format!("{at}.amount"));
        self.currency(&p.currency, || format!("{at}.currency"));
    }

    fn payment_failed(&mut self, p: &PaymentFailed, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
        self.positive_amount(p.amount, || format!("{at}.amount"));
        self.currency(&p.currency, || format!("{at}.currency"));
        self.non_empty(&p.reason_code, || format!("{at}.reasonCode"));
        self.non_empty(&p.reason, || format!("{at}.reason"));
    }

    fn inventory_reserved(&mut self, p: &InventoryReserved, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
        self.non_empty(&p.reservation_id, || format!("{at}.reservationId"));
        if p.items.is_empty() {
            self.add(format!("{at}.items"), "must hold at least one item");
        }
        for (i, item) in p.items.iter().enumerate() {
            self.non_empty(&item.sku, || format!("{at}.items[{i}].sku"));
            self.positive_quantity(item.quantity, || format!("{at}.items[{i}].quantity"));
        }
    }

    fn inventory_out_of_stock(&mut self, p: &InventoryOutOfStock, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
        if p.shortages.is_empty() {
            self.add(format!("{at}.shortages"), "must name at least one SKU");
        }
        for (i, short) in p.shortages.iter().enumerate() {
            self.non_empty(&short.sku, || format!("{at}.shortages[{i}].sku"));
            self.positive_quantity(short.requested, || format!("{at}.shortages[{i}].requested"));
            if short.available >= short.requested {
                self.add(
                    format!("{at}.shortages[{i}].available"),
                    format!(
                        "is {} but a shortage needs fewer than the {} requested",
                        short.available, short.requested
                    ),
                );
            }
        }
    }

    fn order_cancelled(&mut self, p: &OrderCancelled, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
    }

    fn order_confirmed(&mut self, p: &OrderConfirmed, at: &str) {
        self.non_empty(&p.order_id, || format!("{at}.orderId"));
        self.non_empty(&p.payment_id, || format!("{at}.paymentId"));
        self.positive_amount(p.total, || format!("{at}.total"));
        self.currency(&p.currency, || format!("{at}.currency"));
    }
}
