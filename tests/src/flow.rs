//! The whole order flow wired as the template wires it, on the emulator: every function's real
//! consumer (built by its own `consumer(sdk, config)`), one topic, a queue + DLQ per service
//! subscribed with raw delivery and a filter policy listing exactly the event types its code
//! handles, and the orders table's stream feeding the outbox relay. [`Flow::run`] plays the
//! event source mappings: it pumps the stream and every queue until nothing moves, optionally
//! delivering every batch twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use lambda_runtime::{Context, LambdaEvent};
use orderflow::consume::{Consumer, ConsumerEnv, ConsumerOptions, Invocation};
use serde_json::{Value, json};

use crate::streams::StreamReader;
use crate::{Emulator, Queue, unique_name};

/// Physical names of the flow's tables, by role.
#[derive(Clone, Debug)]
pub struct Tables {
    /// Orders, history, outbox (with a stream).
    pub orders: String,
    /// Idempotency records of every consumer.
    pub idempotency: String,
    /// Payments.
    pub payments: String,
    /// Stock and reservations.
    pub inventory: String,
    /// Contacts and messages.
    pub notifications: String,
    /// Counters.
    pub analytics: String,
}

/// Every service, built by its crate exactly as its Lambda builds it.
pub struct Services {
    /// The orders function (API + saga).
    pub orders: Consumer<orders::State>,
    /// The payment function.
    pub payment: Consumer<payment::State>,
    /// The inventory function.
    pub inventory: Consumer<inventory::State>,
    /// The notification function.
    pub notification: Consumer<notification::State>,
    /// The analytics function.
    pub analytics: Consumer<analytics::State>,
    /// The outbox relay.
    pub relay: outbox_relay::Relay,
}

/// Counts of what a run moved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Stream records handed to the relay.
    pub stream_records: usize,
    /// SQS messages handed to consumers (each once, however often it was delivered).
    pub messages: usize,
    /// Messages a consumer returned as failed (they come back).
    pub failures: usize,
}

/// The wired flow.
pub struct Flow {
    /// The emulator clients.
    pub aws: Arc<Emulator>,
    /// The tables.
    pub tables: Tables,
    /// The events topic.
    pub topic: String,
    /// Each service's queue and DLQ, by service name.
    pub queues: BTreeMap<&'static str, (Queue, Queue)>,
    /// The services.
    pub services: Services,
    /// Where the relay sets aside rows it cannot publish.
    pub relay_failures: Queue,
    stream: StreamReader,
}

/// Creates a pay-per-request table keyed by string `hash` (and `range`), with a `NEW_IMAGE`
/// stream if `stream`.
pub async fn create_table(
    aws: &Emulator,
    prefix: &str,
    hash: &str,
    range: Option<&str>,
    stream: bool,
) -> String {
    let name = unique_name(prefix);
    let mut request = aws
        .dynamodb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    for (key, key_type) in
        std::iter::once((hash, KeyType::Hash)).chain(range.map(|r| (r, KeyType::Range)))
    {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(key_type)
                    .build()
                    .expect("key"),
            );
    }
    if stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .expect("stream"),
        );
    }
    request.send().await.expect("CreateTable");
    name
}

impl Flow {
    /// Creates every resource and builds every service.
    pub async fn new(aws: Arc<Emulator>) -> Flow {
        let tables = Tables {
            orders: create_table(&aws, "orders", "pk", Some("sk"), true).await,
            idempotency: create_table(&aws, "idempotency", "id", None, false).await,
            payments: create_table(&aws, "payments", "orderId", None, false).await,
            inventory: create_table(&aws, "inventory", "pk", None, false).await,
            notifications: create_table(&aws, "notifications", "pk", None, false).await,
            analytics: create_table(&aws, "analytics", "pk", None, false).await,
        };
        let topic = aws.topic("events", false).await;
        let sdk = &aws.config;
        let env = ConsumerEnv {
            idempotency_table: tables.idempotency.clone(),
            events_topic_arn: Some(topic.clone()),
            dead_letter_queue_url: None,
        };
        // One record at a time: records of one order in one batch (say OutOfStock and
        // PaymentProcessed) may commit in either order, both correct but with different
        // histories; runs compared item by item must take the same path. The races themselves
        // are tested on their own (tests/emulator/idempotency.rs).
        // Transient failures (a saga event before its order, say) come back within a couple of
        // seconds rather than the production backoff's minutes.
        let sequential = || ConsumerOptions {
            max_concurrency: 1,
            visibility_backoff: orderflow::consume::VisibilityBackoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(2),
            },
            ..ConsumerOptions::default()
        };
        let relay_failures = aws.queue("relay-failures", false).await;
        let services = Services {
            orders: orders::consumer(
                sdk,
                orders::Config {
                    consumer: env.clone(),
                    orders_table: tables.orders.clone(),
                },
            )
            .with_options(sequential()),
            payment: payment::consumer(
                sdk,
                payment::Config {
                    consumer: env.clone(),
                    payments_table: tables.payments.clone(),
                    amount_limit: payment::SimulatorRules::default().amount_limit,
                },
            )
            .with_options(sequential()),
            inventory: inventory::consumer(
                sdk,
                inventory::Config {
                    consumer: env.clone(),
                    inventory_table: tables.inventory.clone(),
                },
            )
            .with_options(sequential()),
            notification: notification::consumer(
                sdk,
                notification::Config {
                    consumer: env.clone(),
                    notifications_table: tables.notifications.clone(),
                },
            )
            .with_options(sequential()),
            analytics: analytics::consumer(
                sdk,
                analytics::Config {
                    consumer: env,
                    analytics_table: tables.analytics.clone(),
                },
            )
            .with_options(sequential()),
            relay: outbox_relay::relay(
                sdk,
                outbox_relay::Config {
                    orders_table: tables.orders.clone(),
                    events_topic_arn: topic.clone(),
                    failure_queue_url: relay_failures.url.clone(),
                    max_attempts: outbox_relay::DEFAULT_MAX_ATTEMPTS,
                },
            ),
        };
        let mut queues = BTreeMap::new();
        let handled = [
            ("orders", services.orders.handled_event_types()),
            ("payment", services.payment.handled_event_types()),
            ("inventory", services.inventory.handled_event_types()),
            ("notification", services.notification.handled_event_types()),
            ("analytics", services.analytics.handled_event_types()),
        ];
        for (name, types) in handled {
            let (queue, dlq) = aws.queue_with_dlq(name, 5, 30).await;
            let filter = json!({"eventType": types.iter().map(|t| t.as_str()).collect::<Vec<_>>()});
            aws.subscribe(&topic, &queue, true, Some(filter)).await;
            queues.insert(name, (queue, dlq));
        }
        let stream = StreamReader::open(&aws.config, &aws.dynamodb, &tables.orders).await;
        Flow {
            aws,
            tables,
            topic,
            queues,
            services,
            relay_failures,
            stream,
        }
    }

    /// Sends an HTTP request to the orders function, as API Gateway would.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<&Value>,
    ) -> (i64, Value) {
        let mut headers = json!({"content-type": "application/json"});
        if let Some(key) = idempotency_key {
            headers["idempotency-key"] = json!(key);
        }
        let request = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": headers,
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                "requestId": "req", "routeKey": "$default", "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 0
            },
            "body": body.map(Value::to_string), "isBase64Encoded": false
        });
        let response = orders::handle(
            &self.services.orders,
            LambdaEvent::new(request, Context::default()),
        )
        .await
        .expect("HTTP response");
        let status = response["statusCode"].as_i64().unwrap_or(0);
        let body = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Plays the event source mappings until nothing moves: the stream to the relay, every
    /// queue to its consumer. Every batch is delivered `deliveries` times (2 = each message and
    /// stream record arrives twice) before it is acknowledged.
    pub async fn run(&mut self, deliveries: usize) -> RunStats {
        let mut stats = RunStats::default();
        let mut quiet_rounds = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        // Delivery is asynchronous on AWS and LocalStack: only a few quiet rounds in a row, with
        // no message waiting out a retry delay, mean done.
        loop {
            if quiet_rounds >= 3 {
                if self.in_flight().await == 0 {
                    break;
                }
                quiet_rounds = 0;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the flow did not settle within 3 minutes: {stats:?}"
            );
            let mut moved = 0;
            let batch = self.stream.next_batch().await;
            if !batch.records.is_empty() {
                stats.stream_records += batch.records.len();
                moved += batch.records.len();
                for _ in 0..deliveries {
                    let response = self.services.relay.handle(&batch).await;
                    assert!(
                        response.batch_item_failures.is_empty(),
                        "the relay failed: {response:?}"
                    );
                }
            }
            for (name, (queue, _)) in &self.queues {
                let messages = self
                    .aws
                    .receive_raw(queue, 10, Duration::from_millis(200))
                    .await;
                if messages.is_empty() {
                    continue;
                }
                moved += messages.len();
                stats.messages += messages.len();
                let event = orderflow::consume::sqs_event::from_received(
                    &messages,
                    &queue.arn,
                    "us-east-1",
                )
                .expect("SqsEvent");
                let mut response = SqsBatchResponse::default();
                for _ in 0..deliveries {
                    response = match *name {
                        "orders" => self
                            .services
                            .orders
                            .process(&event, &Invocation::default())
                            .await
                            .response(),
                        "payment" => self
                            .services
                            .payment
                            .process(&event, &Invocation::default())
                            .await
                            .response(),
                        "inventory" => self
                            .services
                            .inventory
                            .process(&event, &Invocation::default())
                            .await
                            .response(),
                        "notification" => self
                            .services
                            .notification
                            .process(&event, &Invocation::default())
                            .await
                            .response(),
                        _ => self
                            .services
                            .analytics
                            .process(&event, &Invocation::default())
                            .await
                            .response(),
                    };
                }
                stats.failures += response.batch_item_failures.len();
                self.aws.acknowledge(queue, &messages, &response).await;
            }
            quiet_rounds = if moved == 0 { quiet_rounds + 1 } else { 0 };
            if moved == 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        stats
    }

    /// The analytics counters, their shards added up, by counter key (dates undated:
    /// `DAY#<day>`, `REVENUE#<day>#EUR`, `SKU#SKU-MUG`).
    pub async fn analytics(&self) -> BTreeMap<String, BTreeMap<String, rust_decimal::Decimal>> {
        let out = self
            .aws
            .dynamodb
            .scan()
            .table_name(&self.tables.analytics)
            .send()
            .await
            .expect("Scan analytics");
        let items: Vec<(String, Vec<(String, rust_decimal::Decimal)>)> = out
            .items()
            .iter()
            .map(|item| {
                let key = item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .map(|k| undate(k))
                    .unwrap_or_default();
                let amounts = item
                    .iter()
                    .filter_map(|(name, value)| {
                        let amount = value.as_n().ok()?.parse().ok()?;
                        Some((name.clone(), amount))
                    })
                    .collect();
                (key, amounts)
            })
            .collect();
        analytics::sum_shards(items.iter().map(|(k, a)| (k.as_str(), a.clone())))
    }

    /// Messages still in the services' queues, visible or waiting out a retry delay.
    pub async fn in_flight(&self) -> usize {
        let mut total = 0;
        for (queue, _) in self.queues.values() {
            total += self.aws.queue_depth(queue).await;
        }
        total
    }

    /// Every table's items by role, normalized so two runs can be compared: timestamps and
    /// expiry times removed, dated keys undated, JSON attributes parsed.
    pub async fn snapshot(&self) -> BTreeMap<&'static str, Vec<Value>> {
        let roles = [
            ("orders", &self.tables.orders),
            ("idempotency", &self.tables.idempotency),
            ("payments", &self.tables.payments),
            ("inventory", &self.tables.inventory),
            ("notifications", &self.tables.notifications),
            ("analytics", &self.tables.analytics),
        ];
        let mut snapshot = BTreeMap::new();
        for (role, table) in roles {
            let out = self
                .aws
                .dynamodb
                .scan()
                .table_name(table)
                .send()
                .await
                .expect("Scan");
            let mut items: Vec<Value> = out
                .items()
                .iter()
                .map(|item| normalize(serde_dynamo::from_item(item.clone()).expect("item as JSON")))
                .collect();
            items.sort_by_key(Value::to_string);
            snapshot.insert(role, items);
        }
        snapshot
    }
}

/// Attributes that record when (or which invocation), not what.
const TIME_ATTRIBUTES: &[&str] = &[
    "owner",
    "createdAt",
    "updatedAt",
    "at",
    "sentAt",
    "sentAtMs",
    "expiration",
    "inProgressExpiration",
    "occurredAt",
];

fn normalize(value: Value) -> Value {
    match value {
        // Keys sorted: DynamoDB returns attributes in no fixed order, and serde_json keeps
        // insertion order when a dependency enables `preserve_order`.
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !TIME_ATTRIBUTES.contains(&k.as_str()))
                .map(|(k, v)| (k, normalize(v)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(parsed @ (Value::Object(_) | Value::Array(_))) => normalize(parsed),
            _ => Value::String(undate(&s)),
        },
        other => other,
    }
}

/// `HISTORY#2026-11-23T10:00:00.000000Z#PLACED` → `HISTORY#PLACED`; `DAY#2026-11-23` → `DAY#<day>`.
fn undate(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("HISTORY#") {
        return format!("HISTORY#{}", rest.rsplit('#').next().unwrap_or(rest));
    }
    s.split('#')
        .map(|part| {
            let is_date =
                part.len() == 10 && part.as_bytes()[4] == b'-' && part.as_bytes()[7] == b'-';
            if is_date { "<day>" } else { part }
        })
        .collect::<Vec<_>>()
        .join("#")
}
