//! The payment service: charges placed orders through a [`PaymentGateway`], records each
//! payment, emits `PaymentProcessed` or `PaymentFailed`, and refunds a captured payment when its
//! order is cancelled. An order cancelled before it was charged is voided, so a late
//! `OrderPlaced` never charges it.

pub mod gateway;
pub mod store;

use std::sync::Arc;

use orderflow::consume::{Consumer, ConsumerEnv, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{OrderCancelled, OrderPlaced, PaymentFailed, PaymentProcessed};
use rust_decimal::Decimal;
use tracing::info;

pub use gateway::{ChargeRequest, GatewayError, PaymentGateway, SimulatedGateway, SimulatorRules};
pub use store::{DynamoPaymentStore, Inserted, Payment, PaymentStatus, PaymentStore};

/// The consumer's name: idempotency key prefix and `source` of its events.
pub const NAME: &str = "payment";

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Idempotency, follow-up topic, DLQ.
    pub consumer: ConsumerEnv,
    /// `PAYMENTS_TABLE`.
    pub payments_table: String,
    /// `PAYMENT_AMOUNT_LIMIT`: the simulator declines amounts above it (default 10000.00).
    pub amount_limit: Decimal,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            consumer: ConsumerEnv::from_vars(vars)?,
            payments_table: vars.required("PAYMENTS_TABLE")?,
            amount_limit: vars.parsed(
                "PAYMENT_AMOUNT_LIMIT",
                SimulatorRules::default().amount_limit,
            )?,
        })
    }
}

/// What the handlers share.
pub struct State {
    /// The payment provider.
    pub gateway: Arc<dyn PaymentGateway>,
    /// Payment records.
    pub store: Arc<dyn PaymentStore>,
}

/// The consumer as the Lambda runs it, built from `config` with clients from `sdk`.
pub fn consumer(sdk: &aws_config::SdkConfig, config: Config) -> Consumer<State> {
    let rules = SimulatorRules {
        amount_limit: config.amount_limit,
        ..SimulatorRules::default()
    };
    let state = State {
        gateway: Arc::new(SimulatedGateway::new(rules)),
        store: Arc::new(DynamoPaymentStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.payments_table,
        )),
    };
    handlers(state).wired(sdk, &config.consumer)
}

/// The handlers, unwired: what the consumer does with each event type.
pub fn handlers(state: State) -> Consumer<State> {
    Consumer::new(NAME, state).on(charge).on(refund)
}

fn transient(err: impl std::error::Error + Send + Sync + 'static) -> HandlerError {
    HandlerError::transient(err)
}

/// OrderPlaced: charge, record, and tell the others.
pub async fn charge(
    message: Message<OrderPlaced>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = &message.data;
    let existing = state.store.get(&order.order_id).await.map_err(transient)?;
    if existing.is_some_and(|p| p.status == PaymentStatus::Voided) {
        info!(order_id = %order.order_id, "order was cancelled before it was charged; not charging");
        return Ok(Outcome::done().with_result(serde_json::json!({"voided": true})));
    }
    let request = ChargeRequest {
        idempotency_key: order.order_id.clone(),
        customer_id: order.customer_id.clone(),
        amount: order.total,
        currency: order.currency.clone(),
    };
    let (payment, event) = match state.gateway.charge(&request).await {
        Ok(payment_id) => (
            Payment {
                order_id: order.order_id.clone(),
                status: PaymentStatus::Captured,
                payment_id: Some(payment_id.clone()),
                amount: order.total,
                currency: order.currency.clone(),
                decline_code: None,
                refund_id: None,
            },
            message.follow_up(PaymentProcessed {
                order_id: order.order_id.clone(),
                payment_id,
                amount: order.total,
                currency: order.currency.clone(),
            }),
        ),
        Err(GatewayError::Declined { code, reason }) => (
            Payment {
                order_id: order.order_id.clone(),
                status: PaymentStatus::Declined,
                payment_id: None,
                amount: order.total,
                currency: order.currency.clone(),
                decline_code: Some(code.clone()),
                refund_id: None,
            },
            message.follow_up(PaymentFailed {
                order_id: order.order_id.clone(),
                amount: order.total,
                currency: order.currency.clone(),
                reason_code: code,
                reason,
            }),
        ),
        Err(unavailable @ GatewayError::Unavailable(_)) => {
            return Err(HandlerError::transient(unavailable));
        }
    };
    match state.store.insert(&payment).await.map_err(transient)? {
        Inserted::Inserted => {}
        // A redelivery after a crash: the gateway returned the same payment; record unchanged.
        Inserted::Exists(existing) if existing.status == payment.status => {}
        // Cancelled while we were charging: give the money back, say nothing more.
        Inserted::Exists(existing) if existing.status == PaymentStatus::Voided => {
            if let Some(payment_id) = &payment.payment_id {
                state
                    .gateway
                    .refund(payment_id, payment.amount)
                    .await
                    .map_err(transient)?;
            }
            return Ok(Outcome::done().with_result(serde_json::json!({"voided": true})));
        }
        Inserted::Exists(existing) => {
            return Err(HandlerError::permanent(format!(
                "order {} already has a {:?} payment",
                order.order_id, existing.status
            )));
        }
    }
    Ok(Outcome::done().publish(event))
}

/// What a cancellation means for a payment.
#[derive(Debug, Eq, PartialEq)]
pub enum CancellationAction {
    /// Nothing was charged yet: void, so a late OrderPlaced does not charge.
    Void,
    /// Money was taken: refund it.
    Refund,
    /// Declined, refunded or voided already: nothing to do.
    Nothing,
}

/// Decides what to do about a cancelled order's payment.
pub fn on_cancellation(payment: Option<&Payment>) -> CancellationAction {
    match payment.map(|p| p.status) {
        None => CancellationAction::Void,
        Some(PaymentStatus::Captured) => CancellationAction::Refund,
        Some(PaymentStatus::Declined | PaymentStatus::Refunded | PaymentStatus::Voided) => {
            CancellationAction::Nothing
        }
    }
}

/// OrderCancelled: refund a captured payment once, or void an uncharged order.
pub async fn refund(
    message: Message<OrderCancelled>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order_id = &message.data.order_id;
    let mut payment = state.store.get(order_id).await.map_err(transient)?;
    if on_cancellation(payment.as_ref()) == CancellationAction::Void {
        let voided = Payment {
            order_id: order_id.clone(),
            status: PaymentStatus::Voided,
            payment_id: None,
            amount: Decimal::ZERO,
            currency: "XXX".into(),
            decline_code: None,
            refund_id: None,
        };
        match state.store.insert(&voided).await.map_err(transient)? {
            Inserted::Inserted => {
                return Ok(Outcome::done().with_result(serde_json::json!({"action": "voided"})));
            }
            // Charged in the meantime: decide again on what is there now.
            Inserted::Exists(existing) => payment = Some(existing),
        }
    }
    let refunded = match (on_cancellation(payment.as_ref()), payment) {
        (
            CancellationAction::Refund,
            Some(Payment {
                payment_id: Some(payment_id),
                amount,
                ..
            }),
        ) => {
            let refund_id = state
                .gateway
                .refund(&payment_id, amount)
                .await
                .map_err(transient)?;
            state
                .store
                .mark_refunded(order_id, &refund_id)
                .await
                .map_err(transient)?
        }
        _ => false,
    };
    Ok(Outcome::done().with_result(serde_json::json!({"refunded": refunded})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: PaymentStatus) -> Payment {
        Payment {
            order_id: "ord-1".into(),
            status,
            payment_id: Some("pay-ord-1".into()),
            amount: Decimal::ONE,
            currency: "EUR".into(),
            decline_code: None,
            refund_id: None,
        }
    }

    #[test]
    fn a_cancellation_refunds_only_captured_payments_and_voids_uncharged_orders() {
        assert_eq!(on_cancellation(None), CancellationAction::Void);
        assert_eq!(
            on_cancellation(Some(&payment(PaymentStatus::Captured))),
            CancellationAction::Refund
        );
        for done in [
            PaymentStatus::Declined,
            PaymentStatus::Refunded,
            PaymentStatus::Voided,
        ] {
            assert_eq!(
                on_cancellation(Some(&payment(done))),
                CancellationAction::Nothing
            );
        }
    }

    #[test]
    fn the_consumer_handles_exactly_its_two_event_types() {
        struct NoGateway;
        #[async_trait::async_trait]
        impl PaymentGateway for NoGateway {
            async fn charge(&self, _: &ChargeRequest) -> Result<String, GatewayError> {
                Err(GatewayError::Unavailable("test".into()))
            }
            async fn refund(&self, _: &str, _: Decimal) -> Result<String, GatewayError> {
                Err(GatewayError::Unavailable("test".into()))
            }
        }
        struct NoStore;
        #[async_trait::async_trait]
        impl PaymentStore for NoStore {
            async fn get(&self, _: &str) -> Result<Option<Payment>, StoreError> {
                Ok(None)
            }
            async fn insert(&self, _: &Payment) -> Result<Inserted, StoreError> {
                Ok(Inserted::Inserted)
            }
            async fn mark_refunded(&self, _: &str, _: &str) -> Result<bool, StoreError> {
                Ok(false)
            }
        }
        use store::StoreError;
        let consumer = handlers(State {
            gateway: Arc::new(NoGateway),
            store: Arc::new(NoStore),
        });
        assert_eq!(
            consumer.handled_event_types(),
            [
                orderflow::EventType::OrderPlaced,
                orderflow::EventType::OrderCancelled
            ]
        );
    }
}
