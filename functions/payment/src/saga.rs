//! The payment side of the order saga, over its two ports: charge a placed order, and settle
//! a cancelled one, safely in any interleaving of the two and across a crash at any await.
//!
//! Both steps read the order's payment row and move it forward with compare-and-set writes
//! (see [`crate::store`]); whoever finds the row changed under it decides again on what is
//! there now. The intent to charge is written *before* the gateway is called, so a
//! cancellation always knows whether a charge may be in flight:
//!
//! - a cancellation that finds no row writes `VOIDED`, and a later charge never charges;
//! - one that finds `CHARGING` marks it `CANCEL_REQUESTED`; the charge (or its retry after a
//!   crash) then refunds whatever it captured. The gateway is idempotent per order, so a
//!   retried charge finds the earlier capture instead of making a second one;
//! - one that finds `CAPTURED` refunds (idempotent per payment) and records `REFUNDED`.

use orderflow::event::OrderPlaced;

use crate::error::PaymentError;
use crate::gateway::{ChargeRequest, GatewayError, PaymentGateway};
use crate::store::{Inserted, Payment, PaymentStatus, PaymentStore, Transition};

/// How charging a placed order ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Charged {
    /// Money was taken (now or by an earlier attempt): tell the others.
    Captured(Payment),
    /// The gateway refused (now or earlier): tell the others.
    Declined(Payment),
    /// The order was cancelled before or while it was charged: nothing is kept and nothing is
    /// announced.
    Cancelled(Payment),
}

/// How settling a cancelled order's payment ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Settled {
    /// Nothing was charged: the order is voided and will never be charged.
    Voided,
    /// The captured payment was refunded.
    Refunded(Payment),
    /// A charge is in flight: it refunds what it captures.
    LeftToTheCharge,
    /// Declined, refunded or voided already: nothing to do.
    Nothing(PaymentStatus),
}

fn request(order: &OrderPlaced) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: order.order_id.clone(),
        customer_id: order.customer_id.clone(),
        amount: order.total,
        currency: order.currency.clone(),
    }
}

fn refund_target(payment: &Payment) -> Result<(String, rust_decimal::Decimal), PaymentError> {
    match (&payment.payment_id, payment.amount) {
        (Some(id), Some(amount)) => Ok((id.clone(), amount)),
        _ => Err(PaymentError::Inconsistent {
            order_id: payment.order_id.clone(),
            reason: "a captured payment without its payment id or amount".into(),
        }),
    }
}

fn gateway_error(err: GatewayError) -> PaymentError {
    PaymentError::GatewayUnavailable(err.to_string())
}

/// Charges a placed order once: records the intent, calls the gateway, records the result.
pub async fn charge(
    order: &OrderPlaced,
    store: &dyn PaymentStore,
    gateway: &dyn PaymentGateway,
) -> Result<Charged, PaymentError> {
    let intent = Payment::intent(order);
    let mut current = match store.insert(&intent).await? {
        Inserted::Inserted => intent,
        Inserted::Exists(existing) => existing,
    };
    loop {
        let next = match current.status {
            PaymentStatus::Captured => return Ok(Charged::Captured(current)),
            PaymentStatus::Declined => return Ok(Charged::Declined(current)),
            PaymentStatus::Voided | PaymentStatus::Refunded => {
                return Ok(Charged::Cancelled(current));
            }
            // Ours to finish: a fresh intent, or an earlier attempt that crashed or was
            // overtaken by a cancellation. The gateway returns an earlier capture of this
            // order rather than capturing again.
            PaymentStatus::Charging | PaymentStatus::CancelRequested => {
                match gateway.charge(&request(order)).await {
                    Ok(payment_id) => {
                        let captured = Payment {
                            payment_id: Some(payment_id),
                            ..current.with_status(PaymentStatus::Captured)
                        };
                        if current.status == PaymentStatus::CancelRequested {
                            let (payment_id, amount) = refund_target(&captured)?;
                            let refund_id = gateway
                                .refund(&payment_id, amount)
                                .await
                                .map_err(gateway_error)?;
                            Payment {
                                refund_id: Some(refund_id),
                                ..captured.with_status(PaymentStatus::Refunded)
                            }
                        } else {
                            captured
                        }
                    }
                    Err(GatewayError::Declined { code, reason }) => Payment {
                        decline_code: Some(code),
                        decline_reason: Some(reason),
                        ..current.with_status(PaymentStatus::Declined)
                    },
                    Err(unavailable @ GatewayError::Unavailable(_)) => {
                        return Err(gateway_error(unavailable));
                    }
                }
            }
        };
        current = match store.transition(current.status, &next).await? {
            Transition::Done => next,
            // A cancellation (or an earlier attempt) moved it meanwhile: decide again.
            Transition::Stale(now) => now,
        };
    }
}

/// Settles the payment of a cancelled order: voids it if nothing was charged, refunds a
/// capture once, or leaves a charge in flight to refund itself.
pub async fn settle_cancelled(
    order_id: &str,
    store: &dyn PaymentStore,
    gateway: &dyn PaymentGateway,
) -> Result<Settled, PaymentError> {
    let mut current = match store.insert(&Payment::voided(order_id)).await? {
        Inserted::Inserted => return Ok(Settled::Voided),
        Inserted::Exists(existing) => existing,
    };
    loop {
        let (next, settled) = match current.status {
            PaymentStatus::Voided
            | PaymentStatus::Declined
            | PaymentStatus::Refunded
            | PaymentStatus::CancelRequested => return Ok(Settled::Nothing(current.status)),
            PaymentStatus::Charging => (
                current.with_status(PaymentStatus::CancelRequested),
                Settled::LeftToTheCharge,
            ),
            PaymentStatus::Captured => {
                let (payment_id, amount) = refund_target(&current)?;
                let refund_id = gateway
                    .refund(&payment_id, amount)
                    .await
                    .map_err(gateway_error)?;
                let refunded = Payment {
                    refund_id: Some(refund_id),
                    ..current.with_status(PaymentStatus::Refunded)
                };
                (refunded.clone(), Settled::Refunded(refunded))
            }
        };
        match store.transition(current.status, &next).await? {
            Transition::Done => return Ok(settled),
            Transition::Stale(now) => current = now,
        }
    }
}
