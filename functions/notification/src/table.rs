//! The notification table (partition key `pk`): each customer's contact, `CONTACT#<orderId>`,
//! and each message sent, `MESSAGE#<messageId>`. The bundled [`EmailSender`] records messages
//! there instead of sending them.

use aws_sdk_dynamodb::types::AttributeValue;

use orderflow::aws::{AwsError, AwsResultExt};

use crate::compose::Email;
use crate::error::NotificationError;

/// Where to reach the customer of an order.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Contact {
    /// Who.
    pub customer_id: String,
    /// Their address, if the order gave one.
    pub email: Option<String>,
}

/// Sends messages to customers. Must be idempotent per `message_id`.
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync {
    /// Sends (or, if already sent, does nothing).
    async fn send(&self, email: &Email) -> Result<(), NotificationError>;
}

/// Remembers how to reach each order's customer.
#[async_trait::async_trait]
pub trait Contacts: Send + Sync {
    /// Stores the order's contact.
    async fn remember(&self, order_id: &str, contact: &Contact) -> Result<(), NotificationError>;
    /// The order's contact, if known.
    async fn lookup(&self, order_id: &str) -> Result<Option<Contact>, NotificationError>;
}

/// The notification table in DynamoDB, as both ports.
#[derive(Clone, Debug)]
pub struct NotificationTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl NotificationTable {
    /// Over `table` (partition key `pk`, String).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        NotificationTable {
            client,
            table: table.into(),
        }
    }
}

#[async_trait::async_trait]
impl EmailSender for NotificationTable {
    async fn send(&self, email: &Email) -> Result<(), NotificationError> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(format!("MESSAGE#{}", email.message_id)),
            )
            .item("orderId", AttributeValue::S(email.order_id.clone()))
            .item("to", AttributeValue::S(email.to.clone()))
            .item("subject", AttributeValue::S(email.subject.clone()))
            .item("body", AttributeValue::S(email.body.clone()))
            .item("sentAtMs", AttributeValue::N(now_ms()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Already sent: a message is sent once.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(AwsError::new("DynamoDB PutItem", &self.table, &err).into()),
        }
    }
}

#[async_trait::async_trait]
impl Contacts for NotificationTable {
    async fn remember(&self, order_id: &str, contact: &Contact) -> Result<(), NotificationError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("CONTACT#{order_id}")))
            .item("customerId", AttributeValue::S(contact.customer_id.clone()));
        if let Some(email) = &contact.email {
            request = request.item("email", AttributeValue::S(email.clone()));
        }
        request.send().await.aws("DynamoDB PutItem", &self.table)?;
        Ok(())
    }

    async fn lookup(&self, order_id: &str) -> Result<Option<Contact>, NotificationError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("CONTACT#{order_id}")))
            .consistent_read(true)
            .send()
            .await
            .aws("DynamoDB GetItem", &self.table)?;
        Ok(out.item().map(|item| Contact {
            customer_id: item
                .get("customerId")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default(),
            email: item.get("email").and_then(|v| v.as_s().ok()).cloned(),
        }))
    }
}

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default()
}
