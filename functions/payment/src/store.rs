//! The payment record port and its DynamoDB adapter (table key: `orderId`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a payment stands.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Money was taken.
    Captured,
    /// The gateway refused.
    Declined,
    /// Money was taken and given back after a cancellation.
    Refunded,
    /// The order was cancelled before it was charged: it must never be charged.
    Voided,
}

/// One order's payment.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The order.
    pub order_id: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The gateway's payment id (captured, refunded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The amount charged or attempted.
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency: String,
    /// Why it was declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    /// The gateway's refund id (refunded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

/// A store request failed.
#[derive(Debug, thiserror::Error)]
#[error("payments table: {0}")]
pub struct StoreError(pub String);

/// The answer to [`PaymentStore::insert`].
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    /// Written.
    Inserted,
    /// A record was already there (returned as it is).
    Exists(Payment),
}

/// Payment records, as the service needs them.
#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync {
    /// The order's payment, if any.
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, StoreError>;
    /// Writes `payment` unless the order already has one.
    async fn insert(&self, payment: &Payment) -> Result<Inserted, StoreError>;
    /// Marks a captured payment refunded; false if it was not captured (any more).
    async fn mark_refunded(&self, order_id: &str, refund_id: &str) -> Result<bool, StoreError>;
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
}

fn parse(item: &HashMap<String, AttributeValue>) -> Result<Payment, StoreError> {
    serde_dynamo::from_item(item.clone())
        .map_err(|e| StoreError(format!("unreadable payment: {e}")))
}

fn failed(err: impl std::error::Error + 'static) -> StoreError {
    StoreError(orderflow::aws::error_chain(&err))
}

#[async_trait::async_trait]
impl PaymentStore for DynamoPaymentStore {
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(parse).transpose()
    }

    async fn insert(&self, payment: &Payment) -> Result<Inserted, StoreError> {
        let item = serde_dynamo::to_item(payment).map_err(|e| StoreError(e.to_string()))?;
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(orderId)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Inserted::Inserted),
            Err(err) => match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e)) => {
                    let item = e.item().ok_or_else(|| StoreError("condition failed without the old item".into()))?;
                    Ok(Inserted::Exists(parse(item)?))
                }
                _ => Err(failed(err)),
            },
        }
    }

    async fn mark_refunded(&self, order_id: &str, refund_id: &str) -> Result<bool, StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .update_expression("SET #status = :refunded, refundId = :refund")
            .condition_expression("#status = :captured")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":refunded", AttributeValue::S("REFUNDED".into()))
            .expression_attribute_values(":captured", AttributeValue::S("CAPTURED".into()))
            .expression_attribute_values(":refund", AttributeValue::S(refund_id.into()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(failed(err)),
        }
    }
}
