//! The payment service: charges placed orders through a [`PaymentGateway`], records each
//! payment, emits `PaymentProcessed` or `PaymentFailed`, and settles cancelled orders: a
//! capture is refunded, an order cancelled before it was charged is voided (a late
//! `OrderPlaced` never charges it), and a cancellation that meets a charge in flight leaves
//! the refund to that charge. [`saga`] says why no interleaving keeps money for a cancelled
//! order.

pub mod error;
pub mod gateway;
pub mod saga;
pub mod store;

use std::sync::Arc;

use orderflow::consume::{Consumer, ConsumerEnv, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{OrderCancelled, OrderPlaced, PaymentFailed, PaymentProcessed};
use rust_decimal::Decimal;
use serde_json::json;

pub use error::PaymentError;
pub use gateway::{ChargeRequest, GatewayError, PaymentGateway, SimulatedGateway, SimulatorRules};
pub use saga::{Charged, Settled};
pub use store::{
    DynamoPaymentStore, InMemoryPaymentStore, Inserted, Payment, PaymentStatus, PaymentStore,
    Transition,
};

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

fn inconsistent(payment: &Payment, reason: &str) -> PaymentError {
    PaymentError::Inconsistent {
        order_id: payment.order_id.clone(),
        reason: reason.to_owned(),
    }
}

/// OrderPlaced: charge, record, and tell the others.
pub async fn charge(
    message: Message<OrderPlaced>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = &message.data;
    let charged = saga::charge(order, state.store.as_ref(), state.gateway.as_ref()).await?;
    let amount = |p: &Payment| p.amount.unwrap_or(order.total);
    let currency = |p: &Payment| p.currency.clone().unwrap_or_else(|| order.currency.clone());
    Ok(match charged {
        Charged::Captured(payment) => {
            let payment_id = payment
                .payment_id
                .clone()
                .ok_or_else(|| inconsistent(&payment, "captured without a payment id"))?;
            Outcome::done().publish(message.follow_up(PaymentProcessed {
                order_id: order.order_id.clone(),
                payment_id,
                amount: amount(&payment),
                currency: currency(&payment),
            }))
        }
        Charged::Declined(payment) => Outcome::done().publish(message.follow_up(PaymentFailed {
            order_id: order.order_id.clone(),
            amount: amount(&payment),
            currency: currency(&payment),
            reason_code: payment.decline_code.clone().unwrap_or_default(),
            reason: payment.decline_reason.clone().unwrap_or_default(),
        })),
        Charged::Cancelled(payment) => {
            tracing::info!(order_id = %order.order_id, status = payment.status.as_str(), "order cancelled; nothing kept, nothing announced");
            Outcome::done().with_result(json!({"cancelled": payment.status.as_str()}))
        }
    })
}

/// OrderCancelled: refund a captured payment once, void an uncharged order, or leave a charge
/// in flight to refund itself.
pub async fn refund(
    message: Message<OrderCancelled>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let settled = saga::settle_cancelled(
        &message.data.order_id,
        state.store.as_ref(),
        state.gateway.as_ref(),
    )
    .await?;
    let result = match settled {
        Settled::Voided => json!({"action": "voided"}),
        Settled::Refunded(payment) => json!({"action": "refunded", "refundId": payment.refund_id}),
        Settled::LeftToTheCharge => json!({"action": "left to the charge in flight"}),
        Settled::Nothing(status) => json!({"action": "nothing", "status": status.as_str()}),
    };
    Ok(Outcome::done().with_result(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_handles_exactly_its_two_event_types() {
        let consumer = handlers(State {
            gateway: Arc::new(SimulatedGateway::default()),
            store: Arc::new(InMemoryPaymentStore::new()),
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
