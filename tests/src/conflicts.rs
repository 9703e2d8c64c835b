//! An HTTP client that makes the emulator's DynamoDB behave like DynamoDB under contention.
//!
//! moto runs transactions one after another, so concurrent transactions on one item never
//! cancel each other there; DynamoDB cancels a `TransactWriteItems` with `TransactionConflict`
//! when another transaction is in progress on one of its items. This client holds the items
//! of every transaction in flight (for `hold` longer than the emulator takes, to widen the
//! window as network latency would) and answers a transaction that touches a held item with
//! DynamoDB's own cancellation: 400, `TransactionCanceledException`, a `TransactionConflict`
//! reason for each held item. Everything else passes through unchanged.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct ConflictingDynamoDb {
    inner: SharedHttpClient,
    held: Arc<Mutex<HashSet<String>>>,
    hold: Duration,
    conflicts: Arc<AtomicUsize>,
    transactions: Arc<AtomicUsize>,
}

impl ConflictingDynamoDb {
    /// Over a plain HTTP client (the emulator is reached over HTTP).
    pub fn new(hold: Duration) -> Self {
        ConflictingDynamoDb {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            held: Arc::default(),
            hold,
            conflicts: Arc::default(),
            transactions: Arc::default(),
        }
    }

    /// Transactions cancelled by a conflict so far.
    pub fn conflicts(&self) -> usize {
        self.conflicts.load(Ordering::SeqCst)
    }

    /// Transactions sent so far (cancelled ones included).
    pub fn transactions(&self) -> usize {
        self.transactions.load(Ordering::SeqCst)
    }
}

impl HttpClient for ConflictingDynamoDb {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            inner: self.inner.http_connector(settings, components),
            client: self.clone(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    inner: SharedHttpConnector,
    client: ConflictingDynamoDb,
}

/// The items a transaction touches: table and key (the `Key`, or a `Put` item's key
/// attributes as this project names them).
fn items(body: &Value) -> Vec<Option<String>> {
    body["TransactItems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let (_, write) = item.as_object()?.iter().next()?;
            let key = if write["Key"].is_object() {
                write["Key"].clone()
            } else {
                let item = &write["Item"];
                json!({"pk": item["pk"], "sk": item["sk"], "id": item["id"], "orderId": item["orderId"]})
            };
            Some(format!("{}|{key}", write["TableName"].as_str()?))
        })
        .collect()
}

fn cancelled(reasons: Vec<Value>) -> HttpResponse {
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    });
    let mut response = HttpResponse::new(
        StatusCode::try_from(400).expect("400"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let is_transaction = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".TransactWriteItems"));
        let body: Option<Value> = is_transaction
            .then(|| {
                request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice(b).ok())
            })
            .flatten();
        let Some(body) = body else {
            return self.inner.call(request);
        };
        let client = self.client.clone();
        client.transactions.fetch_add(1, Ordering::SeqCst);
        let keys = items(&body);
        {
            let mut held = client.held.lock().expect("held items");
            if keys.iter().flatten().any(|k| held.contains(k)) {
                client.conflicts.fetch_add(1, Ordering::SeqCst);
                let reasons = keys
                    .iter()
                    .map(|k| match k {
                        Some(k) if held.contains(k) => json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
                        _ => json!({"Code": "None"}),
                    })
                    .collect();
                return HttpConnectorFuture::ready(Ok(cancelled(reasons)));
            }
            held.extend(keys.iter().flatten().cloned());
        }
        let inner = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let response = inner.await;
            tokio::time::sleep(client.hold).await;
            let mut held = client.held.lock().expect("held items");
            for key in keys.iter().flatten() {
                held.remove(key);
            }
            response
        })
    }
}
