//! The orders table (keys `pk`, `sk`; stream with new images). One partition per order:
//! `ORDER#<id>` holds the order (`sk = ORDER`), its status history (`sk = HISTORY#…`) and its
//! outbox (`sk = OUTBOX#<eventId>`), so an order, its history and its events are written
//! together in one transaction. The outbox relay reads new `OUTBOX#` items from the stream.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use orderflow::Event;
use orderflow::idempotency::Write;
use serde::{Deserialize, Serialize};

use orderflow::aws::AwsResultExt;

use crate::domain::{Decision, Order, OrderStatus};
use crate::error::OrdersError;

/// One entry of an order's history.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// What happened: `PLACED`, `PAYMENT_RECEIVED`, `STOCK_RESERVED`, `CONFIRMED`, `CANCELLED`.
    pub status: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is more to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The event that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// A change to an order and what it records, in domain terms: the adapter turns the decision
/// into its update and the condition that keeps it right under concurrency.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// What was decided (never `Ignore`).
    pub decision: Decision,
    /// When.
    pub at: DateTime<Utc>,
    /// The history entry.
    pub history: HistoryEntry,
    /// The event to put in the outbox.
    pub event: Option<Event>,
}

/// The answer to [`OrderRepository::create`].
#[derive(Clone, Debug, PartialEq)]
pub enum Created {
    /// Order, history and outbox event written.
    New,
    /// An order with this id exists already (a retried request): returned as it is.
    Exists(Box<Order>),
}

/// The orders table, as the service needs it.
#[async_trait::async_trait]
pub trait OrderRepository: Send + Sync {
    /// Writes the order, its first history entry and its `OrderPlaced` in ONE transaction:
    /// the event exists if and only if the order does.
    async fn create(&self, order: &Order, event: &Event) -> Result<Created, OrdersError>;
    /// The order, if it exists.
    async fn load(&self, order_id: &str) -> Result<Option<Order>, OrdersError>;
    /// The order and its history, oldest first.
    async fn view(&self, order_id: &str)
    -> Result<Option<(Order, Vec<HistoryEntry>)>, OrdersError>;
    /// The writes that record an order another system placed (its `OrderPlaced` came through
    /// the topic, not the API): the order, unless one with its id exists, and its first history
    /// entry. No outbox row: the event is out already.
    fn record_placed(
        &self,
        order: &Order,
        history: &HistoryEntry,
    ) -> Result<Vec<Write>, OrdersError>;
    /// The writes that apply `change` to the order: the update, the history entry and the
    /// outbox event, committed together by the consumer.
    fn apply(&self, order_id: &str, change: &Change) -> Result<Vec<Write>, OrdersError>;
}

/// The orders table in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoOrderRepository {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn unreadable(key: impl Into<String>, err: impl std::fmt::Display) -> OrdersError {
    OrdersError::Unreadable {
        key: key.into(),
        reason: err.to_string(),
    }
}

/// A request the SDK refused to build: a bug here, not something a retry fixes.
fn unbuildable(err: impl std::fmt::Display) -> OrdersError {
    unreadable("(request)", err)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The partition key of an order's item collection (the order, its history, its outbox rows).
fn order_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

fn pk(order_id: &str) -> AttributeValue {
    s(order_pk(order_id))
}

impl DynamoOrderRepository {
    /// Over `table` (keys `pk`, `sk`, both String).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoOrderRepository {
            client,
            table: table.into(),
        }
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: Option<&str>,
    ) -> Result<Write, OrdersError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned));
        Ok(Write::dynamodb(
            TransactWriteItem::builder()
                .put(put.build().map_err(unbuildable)?)
                .build(),
        ))
    }

    fn history_item(
        &self,
        order_id: &str,
        entry: &HistoryEntry,
    ) -> Result<HashMap<String, AttributeValue>, OrdersError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(entry).map_err(|e| unreadable(format!("ORDER#{order_id}"), e))?;
        item.insert("pk".into(), pk(order_id));
        item.insert(
            "sk".into(),
            s(format!(
                "HISTORY#{}#{}",
                entry.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                entry.status
            )),
        );
        Ok(item)
    }

    /// The outbox row of `event`, in the library's format: the relay publishes `event` (the
    /// exact JSON) with the attributes stored beside it, and marks it sent.
    fn outbox_item(&self, event: &Event) -> Result<HashMap<String, AttributeValue>, OrdersError> {
        Ok(orderflow::outbox::row_item(
            &order_pk(&event.aggregate_id),
            event,
        )?)
    }

    fn order_item(&self, order: &Order) -> Result<HashMap<String, AttributeValue>, OrdersError> {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(order)
            .map_err(|e| unreadable(format!("ORDER#{}", order.order_id), e))?;
        item.insert("pk".into(), pk(&order.order_id));
        item.insert("sk".into(), s("ORDER"));
        Ok(item)
    }
}

#[async_trait::async_trait]
impl OrderRepository for DynamoOrderRepository {
    async fn create(&self, order: &Order, event: &Event) -> Result<Created, OrdersError> {
        let item = self.order_item(order)?;
        let history = HistoryEntry {
            status: "PLACED".into(),
            at: order.created_at,
            detail: None,
            event_id: Some(event.event_id.to_string()),
        };
        let writes = vec![
            self.put(item, Some("attribute_not_exists(pk)"))?,
            self.put(self.history_item(&order.order_id, &history)?, None)?,
            self.put(self.outbox_item(event)?, Some("attribute_not_exists(pk)"))?,
        ];
        let sent = self
            .client
            .transact_write_items()
            // This adapter's own writes, all DynamoDB writes.
            .set_transact_items(Some(
                writes
                    .into_iter()
                    .filter_map(Write::into_dynamodb)
                    .collect(),
            ))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Created::New),
            Err(err) => {
                let cancelled = err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception());
                if cancelled && let Some(existing) = self.load(&order.order_id).await? {
                    return Ok(Created::Exists(Box::new(existing)));
                }
                Err(
                    orderflow::aws::AwsError::new("DynamoDB TransactWriteItems", &self.table, &err)
                        .into(),
                )
            }
        }
    }

    async fn load(&self, order_id: &str) -> Result<Option<Order>, OrdersError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(order_id))
            .key("sk", s("ORDER"))
            .consistent_read(true)
            .send()
            .await
            .aws("DynamoDB GetItem", &self.table)?;
        out.item()
            .map(|item| {
                serde_dynamo::from_item(item.clone())
                    .map_err(|e| unreadable(format!("ORDER#{order_id}"), e))
            })
            .transpose()
    }

    async fn view(
        &self,
        order_id: &str,
    ) -> Result<Option<(Order, Vec<HistoryEntry>)>, OrdersError> {
        let Some(order) = self.load(order_id).await? else {
            return Ok(None);
        };
        let mut history = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :history)")
                .expression_attribute_values(":pk", pk(order_id))
                .expression_attribute_values(":history", s("HISTORY#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .aws("DynamoDB Query", &self.table)?;
            for item in out.items() {
                history.push(
                    serde_dynamo::from_item(item.clone())
                        .map_err(|e| unreadable(format!("ORDER#{order_id} history"), e))?,
                );
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        Ok(Some((order, history)))
    }

    fn record_placed(
        &self,
        order: &Order,
        history: &HistoryEntry,
    ) -> Result<Vec<Write>, OrdersError> {
        Ok(vec![
            // If the order exists meanwhile, the transaction fails and the retry finds it.
            self.put(self.order_item(order)?, Some("attribute_not_exists(pk)"))?,
            self.put(self.history_item(&order.order_id, history)?, None)?,
        ])
    }

    fn apply(&self, order_id: &str, change: &Change) -> Result<Vec<Write>, OrdersError> {
        // Each update only while the order is still PLACED, so a late or repeated event cannot
        // undo a confirmation or a cancellation.
        let (mut set, condition): (Vec<(&str, AttributeValue)>, &str) = match &change.decision {
            Decision::Ignore(_) => return Ok(Vec::new()),
            Decision::RecordPayment(payment_id) => (
                vec![("paymentId", s(payment_id))],
                // Not if the reservation arrived meanwhile: then the retry confirms instead.
                "#status = :placed AND attribute_not_exists(reservationId)",
            ),
            Decision::RecordReservation(reservation_id) => (
                vec![("reservationId", s(reservation_id))],
                "#status = :placed AND attribute_not_exists(paymentId)",
            ),
            Decision::Confirm {
                payment_id,
                reservation_id,
            } => (
                vec![
                    ("status", status_value(OrderStatus::Confirmed)),
                    ("paymentId", s(payment_id)),
                    ("reservationId", s(reservation_id)),
                ],
                "#status = :placed",
            ),
            // Once, and never after confirmation.
            Decision::Cancel { detail, .. } => (
                vec![
                    ("status", status_value(OrderStatus::Cancelled)),
                    ("cancelDetail", s(detail)),
                ],
                "#status = :placed",
            ),
        };
        set.push(("updatedAt", s(change.at.to_rfc3339())));
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", pk(order_id))
            .key("sk", s("ORDER"))
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":placed", s("PLACED"));
        let mut assignments = Vec::new();
        for (i, (attribute, value)) in set.into_iter().enumerate() {
            assignments.push(format!("#s{i} = :s{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), attribute)
                .expression_attribute_values(format!(":s{i}"), value);
        }
        let update = update
            .update_expression(format!("SET {}", assignments.join(", ")))
            .build()
            .map_err(unbuildable)?;
        let mut writes = vec![Write::dynamodb(
            TransactWriteItem::builder().update(update).build(),
        )];
        writes.push(self.put(self.history_item(order_id, &change.history)?, None)?);
        if let Some(event) = &change.event {
            writes.push(self.put(self.outbox_item(event)?, Some("attribute_not_exists(pk)"))?);
        }
        Ok(writes)
    }
}

/// The status text stored for an order status.
pub fn status_value(status: OrderStatus) -> AttributeValue {
    s(match status {
        OrderStatus::Placed => "PLACED",
        OrderStatus::Confirmed => "CONFIRMED",
        OrderStatus::Cancelled => "CANCELLED",
    })
}
