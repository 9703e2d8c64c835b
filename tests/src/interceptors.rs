//! SDK interceptors that let a test see or alter what the real SDK sends to the emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_sns::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sns::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sns::operation::publish_batch::PublishBatchInput;
use aws_smithy_runtime_api::box_error::BoxError;

/// Counts HTTP requests about to leave the client, and remembers how many entries each
/// PublishBatch request carried.
#[derive(Clone, Debug, Default)]
pub struct CountRequests {
    requests: Arc<AtomicUsize>,
    batch_sizes: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl CountRequests {
    /// Requests sent so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Entries per PublishBatch request, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input_mut().downcast_mut::<PublishBatchInput>() {
            let entries = input
                .publish_batch_request_entries
                .as_ref()
                .map_or(0, Vec::len);
            if let Ok(mut sizes) = self.batch_sizes.lock() {
                sizes.push(entries);
            }
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Makes SNS reject one PublishBatch entry for real: adds a `MessageDeduplicationId`, which a
/// standard topic refuses (`InvalidParameter`, sender's fault).
///
/// moto rejects that entry alone, which is what the per-entry test needs. LocalStack 4.14
/// never fails a single entry (so `make test-localstack` skips that test), and whether AWS
/// fails the entry or the whole request is not confirmed; the publisher's handling of both is
/// also covered offline in `shared/src/publish/tests.rs`.
#[derive(Clone, Debug)]
pub struct PoisonBatchEntry {
    /// The entry `Id` to poison (the publisher uses `e<input index>`).
    pub entry_id: String,
}

impl Intercept for PoisonBatchEntry {
    fn name(&self) -> &'static str {
        "PoisonBatchEntry"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input_mut().downcast_mut::<PublishBatchInput>() {
            for entry in input.publish_batch_request_entries.iter_mut().flatten() {
                if entry.id == self.entry_id {
                    entry.message_deduplication_id =
                        Some("not-allowed-on-a-standard-topic".to_owned());
                }
            }
        }
        Ok(())
    }
}

/// An SNS client like `config`'s, with an interceptor added.
pub fn sns_with(
    config: &aws_config::SdkConfig,
    interceptor: impl Intercept + 'static,
) -> aws_sdk_sns::Client {
    let conf = aws_sdk_sns::config::Builder::from(config)
        .interceptor(interceptor)
        .build();
    aws_sdk_sns::Client::from_conf(conf)
}

/// A DynamoDB client like `config`'s, with an interceptor added.
pub fn dynamodb_with(
    config: &aws_config::SdkConfig,
    interceptor: impl Intercept + 'static,
) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(config)
        .interceptor(interceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}
