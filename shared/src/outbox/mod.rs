//! The transactional outbox: a service writes the events of a change into its own table, in
//! the same transaction as the change, and a relay publishes them from the table's DynamoDB
//! stream. Any service can have one; the orders service does.
//!
//! - The row format, one place for both sides: [`row_item`] is the row a writer
//!   puts in its transaction (key `<the writer's pk>`, `OUTBOX#<eventId>`, status `PENDING`, the
//!   exact event JSON and the envelope fields the message attributes come from), and
//!   [`outbox_record`] reads it back from a stream record.
//! - [`Relay`]: the publish step. [`OutboxStore`] marks rows sent and counts failed attempts
//!   ([`DynamoOutboxStore`]); [`FailureSink`] takes the rows set aside ([`SqsFailureSink`]: the
//!   on-failure queue). [`DynamoOutboxStore::pending`] and [`DynamoOutboxStore::republish`]
//!   are what `orderflow outbox` does for an operator.
//!
//! What the relay promises:
//! - **Byte for byte.** The stored event JSON is published unchanged, with the message
//!   attributes stored beside it: a field a newer writer added, or a version this relay does
//!   not read, goes out as it was written.
//! - **At least once, never lost.** A row that fails for a transient reason (SNS throttling or
//!   down) is reported by its sequence number, and Lambda retries the stream from there (rows
//!   after it that did go out are published again; their ids are the same, so consumers'
//!   idempotency absorbs them). Each failed attempt is counted on the row.
//! - **Never blocks a shard.** A row that cannot be published (unreadable, rejected by SNS for
//!   good, or failing `max_attempts` times) is sent to the failure queue with its reason, and
//!   the shard moves on. The row stays `PENDING`, to be published again once the cause is
//!   fixed (README, "Reading a DLQ").

mod relay;
mod row;
mod store;

pub use relay::{DEFAULT_MAX_ATTEMPTS, Relay};
pub use row::{OutboxRecord, OutboxRow, PendingRow, Status, outbox_record, row_item};
pub use store::{DynamoOutboxStore, FailureSink, OutboxStore, SetAside, SqsFailureSink};
