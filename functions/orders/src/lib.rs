//! The order service. An HTTP API takes orders: `POST /orders` validates the request and writes
//! the order, its history and its `OrderPlaced` into the outbox in ONE DynamoDB transaction
//! (the event exists if and only if the order does); `GET /orders/{id}` shows the order and its
//! history. A saga consumer listens to payment and inventory: `PaymentFailed` or
//! `InventoryOutOfStock` cancels the order once (never after confirmation) and emits
//! `OrderCancelled`; `PaymentProcessed` and `InventoryReserved` together confirm it and emit
//! `OrderConfirmed`. Its events go through the outbox too.
//!
//! The consumer also takes `OrderPlaced`, whoever published it: an order another system
//! placed straight on the topic is recorded (with its first history entry, in the same
//! transaction as the idempotency record), so its saga ends like any other; an order the API
//! created is left as it is. A saga event that arrives before its `OrderPlaced` waits
//! (a transient `OrderNotYetKnown`) and comes back.

pub mod api;
pub mod domain;
pub mod error;
pub mod memory;
pub mod store;

use std::sync::Arc;

use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use orderflow::consume::{Consumer, ConsumerEnv, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{
    EventData, InventoryOutOfStock, InventoryReserved, OrderCancelled, OrderConfirmed, OrderPlaced,
    PaymentFailed, PaymentProcessed,
};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

pub use domain::{Decision, Order, OrderStatus};
pub use error::OrdersError;
pub use memory::InMemoryOrderRepository;
pub use store::{Change, Created, DynamoOrderRepository, HistoryEntry, OrderRepository};

/// The service's name: idempotency key prefix and `source` of its events.
pub const NAME: &str = "orders";

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Idempotency and DLQ (events go through the outbox, not a topic).
    pub consumer: ConsumerEnv,
    /// `ORDERS_TABLE`.
    pub orders_table: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            consumer: ConsumerEnv::from_vars(vars)?,
            orders_table: vars.required("ORDERS_TABLE")?,
        })
    }
}

/// What the API and the handlers share.
pub struct State {
    /// The orders table.
    pub orders: Arc<dyn OrderRepository>,
}

/// The saga consumer as the Lambda runs it (its state also serves the API).
pub fn consumer(sdk: &aws_config::SdkConfig, config: Config) -> Consumer<State> {
    let orders =
        DynamoOrderRepository::new(aws_sdk_dynamodb::Client::new(sdk), config.orders_table);
    handlers(State {
        orders: Arc::new(orders),
    })
    .wired_without_publisher(sdk, &config.consumer)
}

/// The saga handlers, unwired: all transactional, their effect is the writes they return.
pub fn handlers(state: State) -> Consumer<State> {
    Consumer::new(NAME, state)
        .on_transactional(order_placed)
        .on_transactional(payment_processed)
        .on_transactional(payment_failed)
        .on_transactional(inventory_reserved)
        .on_transactional(inventory_out_of_stock)
        // Its events go out through the outbox (written with the change, sent by the relay).
        .emits_no_events()
}

/// What an invocation carries, told apart by its top-level keys: an SQS batch has `Records`,
/// an API Gateway HTTP request `requestContext`. Read from the payload's text in one pass that
/// keeps nothing, so the batch is then read once, straight into its type, as every other
/// function reads it (no `serde_json::Value` of the whole payload in between: that cost a
/// batch's every record an allocation per field, and the binary a second copy of the
/// `SqsEvent` and request decoders).
#[derive(serde::Deserialize)]
struct Shape {
    #[serde(rename = "Records")]
    records: Option<IgnoredAny>,
    #[serde(rename = "requestContext")]
    request_context: Option<IgnoredAny>,
}

/// What the orders function answers: a partial batch response to SQS, a response to the API.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// To the SQS event source: the records to retry.
    Batch(SqsBatchResponse),
    /// To API Gateway.
    Http(Box<ApiGatewayV2httpResponse>),
}

/// One invocation: an SQS batch (the saga) or an HTTP request (the API), told apart by shape.
pub async fn handle(
    consumer: &Consumer<State>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Answer, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    let json = payload.get();
    // Only an object has keys (a struct would also take an array's elements as its fields).
    if !json.trim_start().starts_with('{') {
        return Err(NEITHER.into());
    }
    let shape: Shape = serde_json::from_str(json).map_err(|_| NEITHER)?;
    if shape.records.is_some() {
        let batch: SqsEvent = serde_json::from_str(json)?;
        let response =
            orderflow::lambda::handle(consumer, LambdaEvent::new(batch, context)).await?;
        return Ok(Answer::Batch(response));
    }
    if shape.request_context.is_some() {
        // An HTTP request is an invocation too: the first batch after it is not a cold start.
        orderflow::lambda::first_invocation();
        let request: ApiGatewayV2httpRequest = serde_json::from_str(json)?;
        let state = consumer.state();
        return Ok(Answer::Http(Box::new(
            api::route(&request, state.orders.as_ref()).await,
        )));
    }
    Err(NEITHER.into())
}

const NEITHER: &str =
    "the orders function takes SQS batches and API Gateway HTTP (payload 2.0) requests only";

/// The order a saga event is about; until its `OrderPlaced` has arrived, a transient
/// `OrderNotYetKnown`, so the event waits with the usual backoff instead of being dead-lettered.
async fn load(state: &State, order_id: &str) -> Result<Order, OrdersError> {
    state
        .orders
        .load(order_id)
        .await?
        .ok_or_else(|| OrdersError::NotYetKnown(order_id.to_owned()))
}

/// OrderPlaced, whoever published it: record an order this service has not seen.
pub async fn order_placed(
    message: Message<OrderPlaced>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let placed = &message.data;
    if state.orders.load(&placed.order_id).await?.is_some() {
        return Ok(Outcome::done().with_result(serde_json::json!({"known": true})));
    }
    let order = Order::placed_elsewhere(&message.event, placed);
    let history = HistoryEntry {
        status: "PLACED".into(),
        at: order.created_at,
        detail: order.placed_by.as_ref().map(|by| format!("placed by {by}")),
        event_id: Some(message.event.event_id.to_string()),
    };
    tracing::info!(order_id = %order.order_id, placed_by = ?order.placed_by, "recording an order placed elsewhere");
    let writes = state.orders.record_placed(&order, &history)?;
    Ok(writes.into_iter().fold(
        Outcome::done().with_result(serde_json::json!({"recorded": true})),
        Outcome::write,
    ))
}

/// The change a decision makes, with the event it emits (through the outbox).
fn change<T: EventData>(
    decision: &Decision,
    message: &Message<T>,
    order: &Order,
) -> Option<Change> {
    let at = Utc::now();
    let history = |status: &str, detail: Option<String>| HistoryEntry {
        status: status.into(),
        at,
        detail,
        event_id: Some(message.event.event_id.to_string()),
    };
    let (history, event) = match decision {
        Decision::Ignore(_) => return None,
        Decision::RecordPayment(payment_id) => {
            (history("PAYMENT_RECEIVED", Some(payment_id.clone())), None)
        }
        Decision::RecordReservation(reservation_id) => (
            history("STOCK_RESERVED", Some(reservation_id.clone())),
            None,
        ),
        Decision::Confirm { payment_id, .. } => (
            history("CONFIRMED", None),
            Some(message.follow_up(OrderConfirmed {
                order_id: order.order_id.clone(),
                payment_id: payment_id.clone(),
                total: order.total,
                currency: order.currency.clone(),
            })),
        ),
        Decision::Cancel { reason, detail } => (
            history("CANCELLED", Some(detail.clone())),
            Some(message.follow_up(OrderCancelled {
                order_id: order.order_id.clone(),
                reason: *reason,
                detail: Some(detail.clone()),
            })),
        ),
    };
    Some(Change {
        decision: decision.clone(),
        at,
        history,
        event,
    })
}

/// Turns a decision into the handler's outcome.
fn decide<T: EventData>(
    state: &State,
    message: &Message<T>,
    order: &Order,
    decision: Decision,
) -> Result<Outcome, HandlerError> {
    let Some(change) = change(&decision, message, order) else {
        let Decision::Ignore(reason) = decision else {
            return Ok(Outcome::done());
        };
        tracing::info!(order_id = %order.order_id, reason, "nothing to change");
        return Ok(Outcome::done().with_result(serde_json::json!({"ignored": reason})));
    };
    let writes = state.orders.apply(&order.order_id, &change)?;
    Ok(writes.into_iter().fold(Outcome::done(), Outcome::write))
}

/// PaymentProcessed: record it, or confirm if the stock is reserved already.
pub async fn payment_processed(
    message: Message<PaymentProcessed>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = load(&state, &message.data.order_id).await?;
    let decision = domain::on_payment_processed(&order, &message.data.payment_id);
    decide(&state, &message, &order, decision)
}

/// InventoryReserved: record it, or confirm if the payment is in already.
pub async fn inventory_reserved(
    message: Message<InventoryReserved>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = load(&state, &message.data.order_id).await?;
    let decision = domain::on_inventory_reserved(&order, &message.data.reservation_id);
    decide(&state, &message, &order, decision)
}

/// PaymentFailed: cancel.
pub async fn payment_failed(
    message: Message<PaymentFailed>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = load(&state, &message.data.order_id).await?;
    let decision = domain::on_payment_failed(&order, &message.data.reason);
    decide(&state, &message, &order, decision)
}

/// InventoryOutOfStock: cancel, naming the short SKUs.
pub async fn inventory_out_of_stock(
    message: Message<InventoryOutOfStock>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = load(&state, &message.data.order_id).await?;
    let decision = domain::on_out_of_stock(&order, &message.data.shortages);
    decide(&state, &message, &order, decision)
}
