//! # orderflow
//!
//! Event-driven AWS Lambda handlers in Rust. A service publishes a fact such as `OrderPlaced` to
//! an SNS topic; every interested service consumes it from its own SQS queue.
//!
//! - [`event`]: the event contract — one envelope, typed payloads, versions, validation, JSON
//!   Schemas for other publishers.
//! - [`publish`]: the SNS [`publish::Publisher`], single and batched, with retries.
//! - [`sns`]: unwrapping SNS notifications as SQS delivers them.
//! - [`consume`]: the SQS batch consumer: typed handlers, partial failures, DLQ, retries.
//! - [`idempotency`]: effects once, through DynamoDB conditional writes.
//! - [`dlq`]: operating the dead-letter queues: discover, peek, replay, purge.
//! - `lambda` (feature `lambda`): running a consumer under the Lambda runtime.
//! - [`env`](mod@env): reading a function's configuration from the environment the template sets.
//! - [`aws`]: the one place an `SdkConfig` is built and SDK errors are classified.
//! - [`error`]: [`Classify`], what every error says about itself (can a retry help?).
//! - [`telemetry`]: structured logs and EMF metrics, shared by the CLI and the Lambda functions.
//! - `testing` (feature `testing`): what a consumer's unit tests need: SQS events built from
//!   events, in-memory adapters of every port, a consumer wired to them.

pub mod aws;
pub mod consume;
pub mod dlq;
pub mod env;
pub mod error;
pub mod event;
pub mod idempotency;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod outbox;
pub mod publish;
pub mod sns;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::Classify;
pub use event::{Event, EventError, EventPayload, EventType};
pub use publish::{PublishError, Publisher};
