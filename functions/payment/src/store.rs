//! The payment record port, its DynamoDB adapter (table key: `orderId`) and an in-memory
//! adapter with the same semantics.
//!
//! A payment row moves only forward, and every change is a compare-and-set on its status, so
//! the charge and the cancellation of one order can run in any interleaving, and be retried
//! after a crash at any point, without money being kept for a cancelled order:
//!
//! ```text
//!            charge: intent           gateway captured
//!   (none) ───────────────▶ CHARGING ──────────────────▶ CAPTURED ──cancel: refund──▶ REFUNDED
//!     │                       │  └───── declined ──────▶ DECLINED                        ▲
//!     │ cancel first          │ cancel while charging                                    │
//!     ▼                       ▼                         charge resumes: capture (or find │
//!   VOIDED                CANCEL_REQUESTED ───────────── the earlier one), then refund ──┘
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use orderflow::aws::{AwsError, AwsResultExt};
use orderflow::event::OrderPlaced;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::PaymentError;

/// Where a payment stands.
#[derive(Clone, Copy, Debug, Deserialize, Eq, Hash, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// The charge is about to be, or may have been, sent to the gateway.
    Charging,
    /// Money was taken.
    Captured,
    /// The gateway refused.
    Declined,
    /// The order was cancelled while a charge was in flight: whatever it captured is refunded
    /// by the charge itself when it resumes.
    CancelRequested,
    /// Money was taken and given back after a cancellation.
    Refunded,
    /// The order was cancelled before any charge was attempted: it is never charged.
    Voided,
}

impl PaymentStatus {
    /// The stored text, e.g. `CAPTURED`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Charging => "CHARGING",
            PaymentStatus::Captured => "CAPTURED",
            PaymentStatus::Declined => "DECLINED",
            PaymentStatus::CancelRequested => "CANCEL_REQUESTED",
            PaymentStatus::Refunded => "REFUNDED",
            PaymentStatus::Voided => "VOIDED",
        }
    }
}

/// One order's payment.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The order.
    pub order_id: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The amount charged or attempted (none for a payment voided before any attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    /// ISO 4217 code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The gateway's payment id (captured, refunded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Why it was declined (machine-readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    /// Why it was declined (for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    /// The gateway's refund id (refunded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

impl Payment {
    /// The intent to charge `order`, recorded before the gateway is called.
    pub fn intent(order: &OrderPlaced) -> Self {
        Payment {
            order_id: order.order_id.clone(),
            status: PaymentStatus::Charging,
            amount: Some(order.total),
            currency: Some(order.currency.clone()),
            payment_id: None,
            decline_code: None,
            decline_reason: None,
            refund_id: None,
        }
    }

    /// An order cancelled before anything was charged.
    pub fn voided(order_id: &str) -> Self {
        Payment {
            order_id: order_id.to_owned(),
            status: PaymentStatus::Voided,
            amount: None,
            currency: None,
            payment_id: None,
            decline_code: None,
            decline_reason: None,
            refund_id: None,
        }
    }

    /// This payment moved to `status`.
    pub fn with_status(&self, status: PaymentStatus) -> Self {
        Payment {
            status,
            ..self.clone()
        }
    }
}

/// The answer to [`PaymentStore::insert`].
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    /// Written.
    Inserted,
    /// The order already has a payment (returned as it is); nothing was written.
    Exists(Payment),
}

/// The answer to [`PaymentStore::transition`].
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// The payment was replaced.
    Done,
    /// The payment no longer had the expected status (returned as it is now); nothing was
    /// written.
    Stale(Payment),
}

/// Payment records, as the service needs them.
#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync {
    /// The order's payment, if any.
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, PaymentError>;
    /// Writes `payment` unless the order already has one.
    async fn insert(&self, payment: &Payment) -> Result<Inserted, PaymentError>;
    /// Replaces the order's payment with `next` if its status is still `expected`.
    async fn transition(
        &self,
        expected: PaymentStatus,
        next: &Payment,
    ) -> Result<Transition, PaymentError>;
}

/// Payment records in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoPaymentStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPaymentStore {
    /// A store over `table` (partition key `orderId`, String).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoPaymentStore {
            client,
            table: table.into(),
        }
    }

    fn parse(
        &self,
        operation: &'static str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Payment, PaymentError> {
        serde_dynamo::from_item(item.clone()).map_err(|err| {
            AwsError::other(
                operation,
                &self.table,
                format!("unreadable payment: {err}"),
                false,
            )
            .into()
        })
    }

    fn item(&self, payment: &Payment) -> Result<HashMap<String, AttributeValue>, PaymentError> {
        serde_dynamo::to_item(payment).map_err(|err| PaymentError::Inconsistent {
            order_id: payment.order_id.clone(),
            reason: err.to_string(),
        })
    }

    /// A conditional put; the old item when the condition fails.
    async fn put_if(
        &self,
        payment: &Payment,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Option<Payment>, PaymentError> {
        const PUT: &str = "DynamoDB PutItem";
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(payment)?))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !values.is_empty() {
            request = request
                .expression_attribute_names("#status", "status")
                .set_expression_attribute_values(Some(values));
        }
        match request.send().await {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let item = failed.item().ok_or_else(|| {
                        AwsError::other(
                            PUT,
                            &self.table,
                            "condition failed but the old item was not returned",
                            true,
                        )
                    })?;
                    Ok(Some(self.parse(PUT, item)?))
                }
                _ => Err(AwsError::new(PUT, &self.table, &err).into()),
            },
        }
    }
}

#[async_trait::async_trait]
impl PaymentStore for DynamoPaymentStore {
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, PaymentError> {
        const GET: &str = "DynamoDB GetItem";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .aws(GET, &self.table)?;
        out.item().map(|item| self.parse(GET, item)).transpose()
    }

    async fn insert(&self, payment: &Payment) -> Result<Inserted, PaymentError> {
        Ok(
            match self
                .put_if(payment, "attribute_not_exists(orderId)", HashMap::new())
                .await?
            {
                None => Inserted::Inserted,
                Some(existing) => Inserted::Exists(existing),
            },
        )
    }

    async fn transition(
        &self,
        expected: PaymentStatus,
        next: &Payment,
    ) -> Result<Transition, PaymentError> {
        let values = HashMap::from([(
            ":expected".to_owned(),
            AttributeValue::S(expected.as_str().to_owned()),
        )]);
        Ok(
            match self.put_if(next, "#status = :expected", values).await? {
                None => Transition::Done,
                Some(current) => Transition::Stale(current),
            },
        )
    }
}

/// Payment records in memory, with the DynamoDB store's semantics: for tests and local runs.
#[derive(Debug, Default)]
pub struct InMemoryPaymentStore {
    payments: Mutex<HashMap<String, Payment>>,
}

impl InMemoryPaymentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Payment>> {
        // A panic while holding the lock cannot leave a half-written payment: every change is
        // one insert of a whole value.
        self.payments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl PaymentStore for InMemoryPaymentStore {
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, PaymentError> {
        Ok(self.lock().get(order_id).cloned())
    }

    async fn insert(&self, payment: &Payment) -> Result<Inserted, PaymentError> {
        let mut payments = self.lock();
        if let Some(existing) = payments.get(&payment.order_id) {
            return Ok(Inserted::Exists(existing.clone()));
        }
        payments.insert(payment.order_id.clone(), payment.clone());
        Ok(Inserted::Inserted)
    }

    async fn transition(
        &self,
        expected: PaymentStatus,
        next: &Payment,
    ) -> Result<Transition, PaymentError> {
        let mut payments = self.lock();
        match payments.get(&next.order_id) {
            Some(current) if current.status == expected => {
                payments.insert(next.order_id.clone(), next.clone());
                Ok(Transition::Done)
            }
            Some(current) => Ok(Transition::Stale(current.clone())),
            None => Err(PaymentError::Inconsistent {
                order_id: next.order_id.clone(),
                reason: format!("no payment to move from {}", expected.as_str()),
            }),
        }
    }
}
