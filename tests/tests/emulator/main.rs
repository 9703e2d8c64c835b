//! Black-box tests against the AWS API emulator named by `AWS_ENDPOINT_URL` (`make test`).

// Test code: a failed call is a failed test, and the panic message says which.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod consumer;
mod differences;
mod dlq;
mod fanout;
mod fifo;
mod flow;
mod hot_items;
mod idempotency;
mod journeys;
mod outbox_tool;
mod publishers;
mod requests;
mod services;
