//! The DynamoDB idempotency store: one conditional write to acquire, one transaction to commit
//! the record together with the handler's own writes.
//!
//! Table: partition key `id` (String), TTL on `expiration`. Attributes: `status`
//! (`INPROGRESS`/`COMPLETED`), `expiration` (epoch s), `inProgressExpiration` (epoch ms),
//! `payloadHash`, `result`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::record::existing_outcome;
use super::{
    Acquired, Claim, Committed, IdempotencyError, IdempotencyRecord, IdempotencyStore, Status,
    TransactionConflict, WriteRefused,
};

/// Taken unless the key is free, expired, or held by an invocation whose deadline passed.
const FREE: &str = "attribute_not_exists(#id) OR #expiration < :now_s \
                    OR (#status = :in_progress AND #in_progress_expiration < :now_ms)";

/// Idempotency records in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoIdempotencyStore {
    /// A store over `table`, which has partition key `id` (String) and TTL on `expiration`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoIdempotencyStore {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn item(
        record: &IdempotencyRecord,
    ) -> Result<HashMap<String, AttributeValue>, IdempotencyError> {
        serde_dynamo::to_item(record).map_err(|err| IdempotencyError::Corrupt {
            key: record.id.clone(),
            reason: err.to_string(),
        })
    }

    fn parse(
        claim: &Claim,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<IdempotencyRecord, IdempotencyError> {
        serde_dynamo::from_item(item.clone()).map_err(|err| IdempotencyError::Corrupt {
            key: claim.key.clone(),
            reason: err.to_string(),
        })
    }

    /// The conditional Put of `record`, returning the old item when the condition fails.
    fn conditional_put(
        &self,
        claim: &Claim,
        record: &IdempotencyRecord,
    ) -> Result<Put, IdempotencyError> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(record)?))
            .condition_expression(FREE)
            .set_expression_attribute_names(Some(names()))
            .set_expression_attribute_values(Some(values(claim)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|err| IdempotencyError::Store {
                message: err.to_string(),
                retryable: false,
            })
    }
}

fn names() -> HashMap<String, String> {
    [
        ("#id", "id"),
        ("#expiration", "expiration"),
        ("#status", "status"),
        ("#in_progress_expiration", "inProgressExpiration"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn values(claim: &Claim) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            ":now_s".to_owned(),
            AttributeValue::N((claim.now_ms / 1000).to_string()),
        ),
        (
            ":now_ms".to_owned(),
            AttributeValue::N(claim.now_ms.to_string()),
        ),
        (
            ":in_progress".to_owned(),
            AttributeValue::S(Status::InProgress.as_str().to_owned()),
        ),
    ])
}

fn store_error<E>(
    operation: &'static str,
    table: &str,
    err: &SdkError<E, HttpResponse>,
) -> IdempotencyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let err = crate::aws::AwsError::new(operation, table, err);
    IdempotencyError::Store {
        retryable: err.retryable,
        message: err.to_string(),
    }
}

/// The tables a transaction writes to, as an error names them: "`idempotency`, `payments`".
fn transaction_tables(items: &[TransactWriteItem]) -> String {
    let mut tables: Vec<&str> = items
        .iter()
        .filter_map(|item| {
            item.put()
                .map(|w| w.table_name())
                .or_else(|| item.update().map(|w| w.table_name()))
                .or_else(|| item.delete().map(|w| w.table_name()))
                .or_else(|| item.condition_check().map(|w| w.table_name()))
        })
        .collect();
    tables.sort_unstable();
    tables.dedup();
    tables.join("`, `")
}

/// Attempts of a transaction cancelled only by conflicts with other transactions: a conflict
/// lasts as long as the other transaction (milliseconds), so retrying here at once, with
/// jittered exponential backoff, clears it without spending one of the message's receives.
const CONFLICT_ATTEMPTS: u32 = 8;
/// The longest pause between two of those attempts.
const CONFLICT_MAX_PAUSE_MS: u64 = 1_000;

/// Whether a transaction was cancelled only because other transactions touched its items.
fn only_conflicts(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let codes: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .filter(|c| *c != "None")
                .collect();
            !codes.is_empty() && codes.iter().all(|c| *c == "TransactionConflict")
        }
        _ => false,
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn acquire(&self, claim: &Claim) -> Result<Acquired, IdempotencyError> {
        let put = self.conditional_put(claim, &claim.record(Status::InProgress, None))?;
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Acquired::Started),
            Err(err) => match err.as_service_error() {
                // The old item comes back with the failure: a duplicate costs no extra read.
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    match failed.item() {
                        Some(item) => existing_outcome(claim, &Self::parse(claim, item)?),
                        None => Err(IdempotencyError::Store {
                            message: "conditional check failed but the old item was not returned"
                                .into(),
                            retryable: true,
                        }),
                    }
                }
                _ => Err(store_error("DynamoDB PutItem", &self.table, &err)),
            },
        }
    }

    async fn complete(&self, claim: &Claim, result: &str) -> Result<(), IdempotencyError> {
        let item = Self::item(&claim.record(Status::Completed, Some(result)))?;
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // Only our own claim: never overwrite a record another invocation took over.
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(claim.owner.clone()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Err(IdempotencyError::ClaimLost {
                        key: claim.key.clone(),
                    })
                }
                _ => Err(store_error("DynamoDB PutItem", &self.table, &err)),
            },
        }
    }

    async fn release(&self, claim: &Claim) -> Result<(), IdempotencyError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(claim.key.clone()))
            // Only our own unfinished hold: never one another invocation took over or completed.
            .condition_expression("#status = :in_progress AND #owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(
                ":in_progress",
                AttributeValue::S(Status::InProgress.as_str().to_owned()),
            )
            .expression_attribute_values(":owner", AttributeValue::S(claim.owner.clone()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(store_error("DynamoDB DeleteItem", &self.table, &err)),
        }
    }

    async fn commit(
        &self,
        claim: &Claim,
        result: &str,
        writes: Vec<super::Write>,
    ) -> Result<Committed, IdempotencyError> {
        let put = self.conditional_put(claim, &claim.record(Status::Completed, Some(result)))?;
        let mut items = Vec::with_capacity(writes.len() + 1);
        items.push(TransactWriteItem::builder().put(put).build());
        for write in writes {
            // An in-memory adapter's write reached the DynamoDB store: a wiring mistake.
            items.push(write.into_dynamodb().ok_or(IdempotencyError::Unsupported)?);
        }
        // Concurrent transactions on a hot item (today's counters, a popular SKU) cancel each
        // other with `TransactionConflict`; a few quick jittered retries here resolve most of
        // them without spending one of the message's receives.
        let mut attempt = 0;
        let err = loop {
            attempt += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(Committed::Written),
                Err(err) if attempt < CONFLICT_ATTEMPTS && only_conflicts(&err) => {
                    let ceiling = (20u64 << attempt).min(CONFLICT_MAX_PAUSE_MS);
                    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(
                        ceiling / 2..=ceiling,
                    )))
                    .await;
                }
                Err(err) => break err,
            }
        };
        let tables = transaction_tables(&items);
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        else {
            return Err(store_error("DynamoDB TransactWriteItems", &tables, &err));
        };
        let reasons = cancelled.cancellation_reasons();
        let failed = |code: Option<&str>| code.is_some_and(|c| c != "None");
        if let Some(first) = reasons
            .first()
            .filter(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            let Some(item) = first.item() else {
                return Err(IdempotencyError::Store {
                    message: "idempotency condition failed but the old item was not returned"
                        .into(),
                    retryable: true,
                });
            };
            return Ok(Committed::AlreadyTaken(existing_outcome(
                claim,
                &Self::parse(claim, item)?,
            )?));
        }
        let refused: Vec<WriteRefused> = reasons
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, r)| failed(r.code()))
            .map(|(i, r)| WriteRefused {
                index: i - 1,
                code: r.code().unwrap_or_default().to_owned(),
                message: r.message().map(str::to_owned),
                item: r.item().cloned(),
            })
            .collect();
        if !refused.is_empty() && refused.iter().all(|w| w.code == "ConditionalCheckFailed") {
            return Err(TransactionConflict { refused }.into());
        }
        // TransactionConflict, throttling, capacity: someone else's timing, not our data.
        Err(IdempotencyError::Store {
            message: store_error("DynamoDB TransactWriteItems", &tables, &err).to_string(),
            retryable: true,
        })
    }
}
