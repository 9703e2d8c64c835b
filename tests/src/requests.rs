//! An HTTP client that counts the AWS requests an SDK client sends, by service and operation:
//! what a function's work costs in requests, seen from the wire.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Counts every request by `Service.Operation` (`DynamoDB.PutItem`, `SNS.Publish`, …) and
/// passes it on to the emulator.
#[derive(Clone, Debug)]
pub struct CountingClient {
    inner: SharedHttpClient,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Default for CountingClient {
    fn default() -> Self {
        CountingClient {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            counts: Arc::default(),
        }
    }
}

impl CountingClient {
    /// The counts so far, and starts again from zero.
    pub fn take(&self) -> BTreeMap<String, usize> {
        self.counts
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

/// `Service.Operation` of a request: JSON protocols name it in `X-Amz-Target`
/// (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessage`), query protocols in the form body
/// (`Action=Publish`).
fn operation(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        let (service, operation) = target.split_once('.').unwrap_or(("?", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "DynamoDB",
            "AmazonSQS" => "SQS",
            s => s,
        };
        return format!("{service}.{operation}");
    }
    let body = request
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let action = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("?");
    format!("SNS.{action}")
}

impl HttpClient for CountingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Counting {
            inner: self.inner.http_connector(settings, components),
            counts: self.counts.clone(),
        })
    }
}

#[derive(Debug)]
struct Counting {
    inner: SharedHttpConnector,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl HttpConnector for Counting {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(operation(&request)).or_default() += 1;
        }
        self.inner.call(request)
    }
}
