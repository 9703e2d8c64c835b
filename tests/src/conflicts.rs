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
        let hold = {
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
            let keys: Vec<String> = keys.into_iter().flatten().collect();
            held.extend(keys.iter().cloned());
            Hold {
                held: client.held.clone(),
                keys,
            }
        };
        let inner = self.inner.call(request);
        let linger = client.hold;
        HttpConnectorFuture::new(async move {
            let response = inner.await;
            tokio::time::sleep(linger).await;
            drop(hold);
            response
        })
    }
}

/// The items of one transaction in flight, released when it ends *or is abandoned*: the SDK
/// drops a request at its attempt timeout, and the consumer drops a record's work at the
/// invocation's deadline. DynamoDB ends an abandoned transaction within milliseconds; a hold
/// released only on completion stayed for ever instead, and every later transaction on the
/// item was cancelled (the hot-items test's runs that did not drain under load).
struct Hold {
    held: Arc<Mutex<HashSet<String>>>,
    keys: Vec<String>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.keys {
            held.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

    use super::*;

    /// A DynamoDB client through `conflicts` to a server that accepts connections and never
    /// answers: every request stays in flight until its caller drops it.
    async fn silent_dynamodb(conflicts: &ConflictingDynamoDb) -> aws_sdk_dynamodb::Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(format!("http://{address}"))
            .http_client(conflicts.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn put_stock() -> TransactWriteItem {
        let put = Put::builder()
            .table_name("inventory")
            .item("pk", AttributeValue::S("SKU#SKU-HOT".into()))
            .build()
            .expect("put");
        TransactWriteItem::builder().put(put).build()
    }

    /// Waits until the double has seen `n` transactions.
    async fn until_sent(conflicts: &ConflictingDynamoDb, n: usize) {
        while conflicts.transactions() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_transaction_abandoned_in_flight_releases_its_items() {
        let conflicts = ConflictingDynamoDb::new(Duration::from_secs(60));
        let dynamodb = silent_dynamodb(&conflicts).await;
        let transaction = || {
            tokio::spawn(
                dynamodb
                    .transact_write_items()
                    .transact_items(put_stock())
                    .send(),
            )
        };
        // GIVEN a transaction on the item that its caller gives up on while it is in flight
        let abandoned = transaction();
        until_sent(&conflicts, 1).await;
        abandoned.abort();
        let dropped = abandoned.await;
        assert!(
            dropped.as_ref().is_err_and(|err| err.is_cancelled()),
            "the silent server answered: {dropped:?}"
        );
        // WHEN another transaction touches the same item
        let next = transaction();
        until_sent(&conflicts, 2).await;
        // THEN it is not cancelled for a transaction that no longer exists: it goes through
        // (and waits on the silent server)
        assert_eq!(conflicts.conflicts(), 0, "cancelled, the item still held");
        assert!(!next.is_finished(), "answered at once: {:?}", next.await);
        next.abort();
    }

    #[tokio::test]
    async fn a_transaction_in_flight_cancels_another_on_the_same_item() {
        let conflicts = ConflictingDynamoDb::new(Duration::from_secs(60));
        let dynamodb = silent_dynamodb(&conflicts).await;
        // GIVEN a transaction on the item in flight
        let in_flight = tokio::spawn(
            dynamodb
                .transact_write_items()
                .transact_items(put_stock())
                .send(),
        );
        until_sent(&conflicts, 1).await;
        // WHEN another touches the same item THEN DynamoDB's cancellation comes back at once
        let second = dynamodb
            .transact_write_items()
            .transact_items(put_stock())
            .send()
            .await;
        let err = second.expect_err("cancelled");
        assert!(
            format!("{err:?}").contains("TransactionConflict"),
            "{err:?}"
        );
        assert_eq!(conflicts.conflicts(), 1);
        in_flight.abort();
    }
}
