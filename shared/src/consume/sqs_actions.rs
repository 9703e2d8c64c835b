//! What the consumer asks of SQS itself: send a poison message to the DLQ, delay a retry, read
//! the queue's receive budget, send a record that must wait longer back to its queue.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use chrono::{DateTime, Utc};
use tracing::warn;

use super::meta::{EARLIER_RECEIVES, WAITING_SINCE};
use super::{RecordError, RecordMeta};

/// An SQS client plus the queue URLs looked up so far (once per execution environment).
#[derive(Debug)]
pub(crate) struct SqsActions {
    client: aws_sdk_sqs::Client,
    /// An explicit DLQ; otherwise the source queue's redrive policy names it.
    dead_letter_queue: Option<String>,
    urls: Mutex<HashMap<String, String>>,
    /// Source queue ARN → its redrive policy.
    redrives: Mutex<HashMap<String, Redrive>>,
}

/// A queue's redrive policy: where SQS moves a message, and after how many receives.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
struct Redrive {
    dead_letter_arn: Option<String>,
    max_receive_count: Option<u32>,
}

impl Redrive {
    /// Reads the policy's JSON; `maxReceiveCount` is a number on AWS and a string on some
    /// emulators, so both are read.
    fn parse(policy: &str) -> Result<Self, String> {
        let policy: serde_json::Value = serde_json::from_str(policy)
            .map_err(|err| format!("unreadable redrive policy: {err}"))?;
        let count = &policy["maxReceiveCount"];
        Ok(Redrive {
            dead_letter_arn: policy["deadLetterTargetArn"].as_str().map(str::to_owned),
            max_receive_count: count
                .as_u64()
                .or_else(|| count.as_str().and_then(|n| n.parse().ok()))
                .and_then(|n| u32::try_from(n).ok()),
        })
    }
}

impl SqsActions {
    pub(crate) fn new(client: aws_sdk_sqs::Client, dead_letter_queue: Option<String>) -> Self {
        SqsActions {
            client,
            dead_letter_queue,
            urls: Mutex::default(),
            redrives: Mutex::default(),
        }
    }

    /// The URL of the queue with this ARN, by GetQueueUrl: URL shapes differ between AWS and
    /// emulators, so they are never built from the ARN by hand.
    async fn queue_url(&self, arn: &str) -> Result<String, String> {
        if let Some(url) = self.urls.lock().ok().and_then(|u| u.get(arn).cloned()) {
            return Ok(url);
        }
        let Some(crate::aws::QueueArn { account, name }) = crate::aws::QueueArn::parse(arn) else {
            return Err(format!("`{arn}` is not an SQS queue ARN"));
        };
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|err| format!("GetQueueUrl {name}: {}", crate::aws::error_chain(&err)))?;
        let url = out
            .queue_url()
            .ok_or("GetQueueUrl returned no URL")?
            .to_owned();
        if let Ok(mut urls) = self.urls.lock() {
            urls.insert(arn.to_owned(), url.clone());
        }
        Ok(url)
    }

    /// What the redrive policy of the queue `source_arn` says, read once per execution
    /// environment (a failed read is not remembered: the next record asks again).
    async fn redrive(&self, source_arn: &str) -> Result<Redrive, String> {
        if let Some(redrive) = self
            .redrives
            .lock()
            .ok()
            .and_then(|r| r.get(source_arn).cloned())
        {
            return Ok(redrive);
        }
        let source_url = self.queue_url(source_arn).await?;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&source_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "GetQueueAttributes RedrivePolicy: {}",
                    crate::aws::error_chain(&err)
                )
            })?;
        let redrive = match out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        {
            Some(policy) => Redrive::parse(policy)?,
            None => Redrive::default(),
        };
        if let Ok(mut redrives) = self.redrives.lock() {
            redrives.insert(source_arn.to_owned(), redrive.clone());
        }
        Ok(redrive)
    }

    /// The DLQ of the queue `source_arn`: the configured one, else its redrive policy's target.
    async fn dead_letter_url(&self, source_arn: Option<&str>) -> Result<String, String> {
        if let Some(url) = &self.dead_letter_queue {
            return Ok(url.clone());
        }
        let source_arn =
            source_arn.ok_or("the record names no source queue, and no DLQ is configured")?;
        let dlq_arn = self
            .redrive(source_arn)
            .await?
            .dead_letter_arn
            .ok_or_else(|| {
                format!("queue {source_arn} has no redrive policy and no DLQ is configured")
            })?;
        self.queue_url(&dlq_arn).await
    }

    /// Sends the record, unchanged, to the DLQ with attributes saying why it failed.
    async fn send_to_dead_letter_queue(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        consumer: &str,
        error: &RecordError,
    ) -> Result<(), String> {
        let dlq_url = self.dead_letter_url(meta.queue_arn.as_deref()).await?;
        let text = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let full = error.to_string();
        let message = crate::error::error_message_attribute(&full);
        let attributes = [
            ("errorKind", text(error.kind())),
            ("errorMessage", text(message)),
            (
                "sourceQueue",
                text(meta.queue_arn.as_deref().unwrap_or("unknown")),
            ),
            ("originalMessageId", text(&meta.message_id)),
            ("consumer", text(consumer)),
            (
                "receiveCount",
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(meta.receive_count.to_string())
                    .build(),
            ),
        ];
        let mut request = self
            .client
            .send_message()
            .queue_url(&dlq_url)
            .message_body(record.body.clone().unwrap_or_default());
        for (name, value) in attributes {
            request = request.message_attributes(name, value.map_err(|err| err.to_string())?);
        }
        if dlq_url.ends_with(".fifo") {
            // A FIFO source has a FIFO DLQ: keep the group, and dedupe a repeated hand-off.
            request = request
                .message_group_id(
                    meta.group_id
                        .clone()
                        .unwrap_or_else(|| meta.message_id.clone()),
                )
                .message_deduplication_id(&meta.message_id);
        }
        request.send().await.map_err(|err| {
            format!(
                "SendMessage to {dlq_url}: {}",
                crate::aws::error_chain(&err)
            )
        })?;
        Ok(())
    }

    /// Keeps a failed record invisible for `delay` before its next attempt. Best effort: if it
    /// fails, the queue's own visibility timeout applies.
    async fn change_visibility(&self, record: &SqsMessage, meta: &RecordMeta, delay: Duration) {
        let (Some(arn), Some(handle)) =
            (meta.queue_arn.as_deref(), record.receipt_handle.as_deref())
        else {
            return;
        };
        let result = match self.queue_url(arn).await {
            Ok(url) => self
                .client
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(delay.as_secs().min(43_200) as i32)
                .send()
                .await
                .map(|_| ())
                .map_err(|err| crate::aws::error_chain(&err)),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            warn!(error = %err, "could not delay the retry; the queue's visibility timeout applies");
        }
    }
}

#[async_trait::async_trait]
impl super::DeadLetterSink for SqsActions {
    async fn dead_letter(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        consumer: &str,
        error: &RecordError,
    ) -> Result<(), String> {
        self.send_to_dead_letter_queue(record, meta, consumer, error)
            .await
    }

    async fn delay_retry(&self, record: &SqsMessage, meta: &RecordMeta, delay: Duration) {
        self.change_visibility(record, meta, delay).await;
    }

    async fn max_receive_count(&self, meta: &RecordMeta) -> Option<u32> {
        let arn = meta.queue_arn.as_deref()?;
        match self.redrive(arn).await {
            Ok(redrive) => redrive.max_receive_count,
            Err(err) => {
                warn!(queue = arn, error = %err, "could not read the queue's redrive policy; its receive budget is unknown");
                None
            }
        }
    }

    /// The copy keeps the record's message attributes and adds the two that say how long it
    /// has waited and how often it was received.
    async fn send_back(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        delay: Duration,
        waiting_since: DateTime<Utc>,
    ) -> Result<(), String> {
        let arn = meta
            .queue_arn
            .as_deref()
            .ok_or("the record names no source queue")?;
        let url = self.queue_url(arn).await?;
        let number = |value: String| {
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value(value)
                .build()
                .map_err(|err| err.to_string())
        };
        let mut attributes = HashMap::new();
        for (name, value) in &record.message_attributes {
            if name != WAITING_SINCE && name != EARLIER_RECEIVES {
                attributes.insert(name.clone(), copy_attribute(name, value)?);
            }
        }
        attributes.insert(
            WAITING_SINCE.to_owned(),
            number(waiting_since.timestamp_millis().to_string())?,
        );
        attributes.insert(
            EARLIER_RECEIVES.to_owned(),
            number(meta.receives().to_string())?,
        );
        if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
            return Err(format!(
                "the copy would carry {} message attributes; SQS allows {MAX_MESSAGE_ATTRIBUTES}",
                attributes.len()
            ));
        }
        self.client
            .send_message()
            .queue_url(&url)
            .message_body(record.body.clone().unwrap_or_default())
            .set_message_attributes(Some(attributes))
            .delay_seconds(delay.as_secs().min(MAX_DELAY_SECONDS) as i32)
            .send()
            .await
            .map_err(|err| format!("SendMessage to {url}: {}", crate::aws::error_chain(&err)))?;
        Ok(())
    }
}

/// SQS's most message attributes on one message.
const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// SQS's longest `DelaySeconds`.
const MAX_DELAY_SECONDS: u64 = 900;

/// A message attribute of the received record, as SendMessage takes it.
fn copy_attribute(
    name: &str,
    value: &SqsMessageAttribute,
) -> Result<MessageAttributeValue, String> {
    let mut copy = MessageAttributeValue::builder().data_type(
        value
            .data_type
            .clone()
            .unwrap_or_else(|| "String".to_owned()),
    );
    if let Some(text) = &value.string_value {
        copy = copy.string_value(text.clone());
    }
    if let Some(bytes) = &value.binary_value {
        copy = copy.binary_value(aws_sdk_sqs::primitives::Blob::new(bytes.0.clone()));
    }
    copy.build()
        .map_err(|err| format!("message attribute {name}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redrive_policy_is_read_with_its_count_as_a_number_or_a_string() {
        let dlq = "arn:aws:sqs:us-east-1:123456789012:orders-dlq";
        let aws = format!(r#"{{"deadLetterTargetArn":"{dlq}","maxReceiveCount":5}}"#);
        let emulator = format!(r#"{{"deadLetterTargetArn":"{dlq}","maxReceiveCount":"5"}}"#);
        for policy in [aws, emulator] {
            assert_eq!(
                Redrive::parse(&policy),
                Ok(Redrive {
                    dead_letter_arn: Some(dlq.to_owned()),
                    max_receive_count: Some(5),
                })
            );
        }
        assert_eq!(
            Redrive::parse(r#"{"deadLetterTargetArn":"x"}"#).map(|r| r.max_receive_count),
            Ok(None)
        );
        assert!(Redrive::parse("not json").is_err());
    }
}
