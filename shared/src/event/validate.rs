//! Business rules every event must satisfy, beyond what its JSON shape says.
//!
//! Rules report the first broken one, as `EventError::InvalidField` with the field's JSON path.

use rust_decimal::Decimal;

use super::EventError;
use super::payload::{
    Address, EventPayload, InventoryOutOfStock, InventoryReserved, OrderCancelled, OrderConfirmed,
    OrderPlaced, PaymentFailed, PaymentProcessed,
};

type Checked = Result<(), EventError>;

/// Checks the rules of one payload; `at` is the JSON path of the payload (`"data"`).
pub(crate) fn payload(payload: &EventPayload, at: &str) -> Checked {
    match payload {
        EventPayload::OrderPlaced(p) => order_placed(p, at),
        EventPayload::PaymentProcessed(p) => payment_processed(p, at),
        EventPayload::PaymentFailed(p) => payment_failed(p, at),
        EventPayload::InventoryReserved(p) => inventory_reserved(p, at),
        EventPayload::InventoryOutOfStock(p) => inventory_out_of_stock(p, at),
        EventPayload::OrderCancelled(p) => order_cancelled(p, at),
        EventPayload::OrderConfirmed(p) => order_confirmed(p, at),
    }
}

fn order_placed(p: &OrderPlaced, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))?;
    non_empty(&p.customer_id, &format!("{at}.customerId"))?;
    if p.items.is_empty() {
        return Err(EventError::invalid(
            format!("{at}.items"),
            "must hold at least one item",
        ));
    }
    let mut sum = Decimal::ZERO;
    for (i, item) in p.items.iter().enumerate() {
        let item_at = format!("{at}.items[{i}]");
        non_empty(&item.sku, &format!("{item_at}.sku"))?;
        positive_quantity(item.quantity, &format!("{item_at}.quantity"))?;
        positive_amount(item.unit_price, &format!("{item_at}.unitPrice"))?;
        sum = item
            .unit_price
            .checked_mul(Decimal::from(item.quantity))
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| EventError::invalid(&item_at, "amount overflows"))?;
    }
    positive_amount(p.total, &format!("{at}.total"))?;
    if p.total != sum {
        return Err(EventError::invalid(
            format!("{at}.total"),
            format!("is {} but the items add up to {}", p.total, sum.normalize()),
        ));
    }
    currency(&p.currency, &format!("{at}.currency"))?;
    if let Some(email) = &p.customer_email {
        email_address(email, &format!("{at}.customerEmail"))?;
    }
    if let Some(address) = &p.shipping_address {
        shipping_address(address, &format!("{at}.shippingAddress"))?;
    }
    Ok(())
}

fn payment_processed(p: &PaymentProcessed, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))?;
    non_empty(&p.payment_id, &format!("{at}.paymentId"))?;
    positive_amount(p.amount, &format!("{at}.amount"))?;
    currency(&p.currency, &format!("{at}.currency"))
}

fn payment_failed(p: &PaymentFailed, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))?;
    positive_amount(p.amount, &format!("{at}.amount"))?;
    currency(&p.currency, &format!("{at}.currency"))?;
    non_empty(&p.reason_code, &format!("{at}.reasonCode"))?;
    non_empty(&p.reason, &format!("{at}.reason"))
}

fn inventory_reserved(p: &InventoryReserved, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))?;
    non_empty(&p.reservation_id, &format!("{at}.reservationId"))?;
    if p.items.is_empty() {
        return Err(EventError::invalid(
            format!("{at}.items"),
            "must hold at least one item",
        ));
    }
    for (i, item) in p.items.iter().enumerate() {
        non_empty(&item.sku, &format!("{at}.items[{i}].sku"))?;
        positive_quantity(item.quantity, &format!("{at}.items[{i}].quantity"))?;
    }
    Ok(())
}

fn inventory_out_of_stock(p: &InventoryOutOfStock, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))?;
    if p.shortages.is_empty() {
        return Err(EventError::invalid(
            format!("{at}.shortages"),
            "must name at least one SKU",
        ));
    }
    for (i, short) in p.shortages.iter().enumerate() {
        non_empty(&short.sku, &format!("{at}.shortages[{i}].sku"))?;
        positive_quantity(short.requested, &format!("{at}.shortages[{i}].requested"))?;
        if short.available >= short.requested {
            return Err(EventError::invalid(
                format!("{at}.shortages[{i}].available"),
                format!(
                    "is {} but a shortage needs fewer than the {} requested",
                    short.available, short.requested
                ),
            ));
        }
    }
    Ok(())
}

fn order_cancelled(p: &OrderCancelled, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))
}

fn order_confirmed(p: &OrderConfirmed, at: &str) -> Checked {
    non_empty(&p.order_id, &format!("{at}.orderId"))?;
    non_empty(&p.payment_id, &format!("{at}.paymentId"))?;
    positive_amount(p.total, &format!("{at}.total"))?;
    currency(&p.currency, &format!("{at}.currency"))
}

fn shipping_address(a: &Address, at: &str) -> Checked {
    non_empty(&a.name, &format!("{at}.name"))?;
    non_empty(&a.line1, &format!("{at}.line1"))?;
    non_empty(&a.city, &format!("{at}.city"))?;
    non_empty(&a.postal_code, &format!("{at}.postalCode"))?;
    let country = &a.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(EventError::invalid(
            format!("{at}.country"),
            format!("`{country}` is not an ISO 3166-1 alpha-2 code such as `DE`"),
        ));
    }
    Ok(())
}

/// A required string must hold something other than white space.
pub(crate) fn non_empty(value: &str, field: &str) -> Checked {
    if value.trim().is_empty() {
        return Err(EventError::invalid(field, "must not be empty"));
    }
    Ok(())
}

fn positive_quantity(quantity: u32, field: &str) -> Checked {
    if quantity == 0 {
        return Err(EventError::invalid(field, "must be at least 1"));
    }
    Ok(())
}

fn positive_amount(amount: Decimal, field: &str) -> Checked {
    if amount <= Decimal::ZERO {
        return Err(EventError::invalid(
            field,
            format!("must be greater than 0, got {amount}"),
        ));
    }
    Ok(())
}

fn currency(code: &str, field: &str) -> Checked {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(EventError::invalid(
            field,
            format!("`{code}` is not an ISO 4217 code such as `EUR`"),
        ));
    }
    Ok(())
}

/// A sanity check, not RFC 5322: one `@` with something on both sides and a dot in the domain.
fn email_address(email: &str, field: &str) -> Checked {
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
        return Err(EventError::invalid(
            field,
            format!("`{email}` is not an email address"),
        ));
    }
    Ok(())
}
