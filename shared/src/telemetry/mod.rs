//! Telemetry shared by the CLI and the Lambda functions: structured logs ([`init`]) and one
//! CloudWatch Embedded Metric Format document per invocation ([`metrics`]).

mod logs;
pub mod metrics;

pub use logs::{init, json_lines};
