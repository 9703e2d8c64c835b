//! The whole order flow wired as the template wires it, on the emulator: every function's real
//! consumer (built by its own `consumer(sdk, config)`), one topic, a queue + DLQ per service
//! subscribed with raw delivery and a filter policy listing exactly the event types its code
//! handles, and the orders table's stream feeding the outbox relay. [`Flow::run`] plays the
//! event source mappings: it pumps the stream and every queue until nothing moves, optionally
//! delivering every batch twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use orderflow::consume::{Consumer, ConsumerOptions};
use orderflow::env::Vars;
use serde_json::{Value, json};

use crate::services::{IDEMPOTENCY_TABLE, QueueConsumer, SERVICES, Service, TableSpec};
use crate::streams::StreamReader;
use crate::{Emulator, Queue};

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

/// One consumer function of the flow: what it is, its queue and DLQ, and the consumer built
/// by its crate.
pub struct Wired {
    /// The registry entry.
    pub service: &'static Service,
    /// Its queue.
    pub queue: Queue,
    /// Its DLQ.
    pub dlq: Queue,
    /// The consumer, built as its Lambda builds it.
    pub consumer: Box<dyn QueueConsumer>,
}

/// The wired flow.
pub struct Flow {
    /// The emulator clients.
    pub aws: Arc<Emulator>,
    /// The events topic.
    pub topic: String,
    /// Every consumer function, in [`SERVICES`] order.
    pub services: Vec<Wired>,
    /// The outbox relay.
    pub relay: outbox_relay::Relay,
    /// Where the relay sets aside rows it cannot publish.
    pub relay_failures: Queue,
    /// Physical table names by role ([`TableSpec::role`]).
    tables: BTreeMap<&'static str, String>,
    stream: StreamReader,
}

async fn create(aws: &Emulator, table: &TableSpec) -> String {
    aws.create_table(table.role, table.hash, table.range, table.stream)
        .await
}

impl Flow {
    /// Creates every resource and builds every service from the environment the template
    /// would give it.
    pub async fn new(aws: Arc<Emulator>) -> Flow {
        let mut tables = BTreeMap::new();
        for table in std::iter::once(&IDEMPOTENCY_TABLE).chain(SERVICES.iter().map(|s| &s.table)) {
            tables.insert(table.role, create(&aws, table).await);
        }
        let topic = aws.topic("events", false).await;
        let relay_failures = aws.queue("relay-failures", false).await;
        let mut environment: BTreeMap<String, String> = SERVICES
            .iter()
            .map(|s| (s.table.variable.to_owned(), tables[s.table.role].clone()))
            .collect();
        environment.insert(
            IDEMPOTENCY_TABLE.variable.to_owned(),
            tables[IDEMPOTENCY_TABLE.role].clone(),
        );
        environment.insert(
            orderflow::env::vars::EVENTS_TOPIC_ARN.to_owned(),
            topic.clone(),
        );
        environment.insert("FAILURE_QUEUE_URL".to_owned(), relay_failures.url.clone());
        let vars = Vars::from_map(environment);

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
        let mut services = Vec::new();
        for service in SERVICES {
            let consumer = (service.build)(&aws.config, &vars, sequential())
                .unwrap_or_else(|err| panic!("{}: {err}", service.name));
            let (queue, dlq) = aws.queue_with_dlq(service.name, 5, 30).await;
            let types = consumer.handled_event_types();
            let filter = json!({"eventType": types.iter().map(|t| t.as_str()).collect::<Vec<_>>()});
            aws.subscribe(&topic, &queue, true, Some(filter)).await;
            services.push(Wired {
                service,
                queue,
                dlq,
                consumer,
            });
        }
        let relay = outbox_relay::relay(
            &aws.config,
            orderflow::env::FromVars::from_vars(&vars).expect("outbox-relay environment"),
        );
        let stream = StreamReader::open(&aws.config, &aws.dynamodb, &tables["orders"]).await;
        Flow {
            aws,
            topic,
            services,
            relay,
            relay_failures,
            tables,
            stream,
        }
    }

    /// The physical name of the table with `role` (`"orders"`, `"payments"`, …).
    pub fn table(&self, role: &str) -> &str {
        self.tables
            .get(role)
            .unwrap_or_else(|| panic!("no table {role}"))
    }

    /// The wired service whose binary is `name`.
    pub fn service(&self, name: &str) -> &Wired {
        self.services
            .iter()
            .find(|w| w.service.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// The consumer of the service `name`, typed, for a test that drives it directly.
    pub fn consumer<S: Send + Sync + 'static>(&self, name: &str) -> &Consumer<S> {
        self.service(name)
            .consumer
            .as_any()
            .downcast_ref()
            .unwrap_or_else(|| panic!("{name} is not a Consumer of that state type"))
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
            self.consumer::<orders::State>("orders"),
            LambdaEvent::new(
                serde_json::value::to_raw_value(&request).unwrap(),
                Context::default(),
            ),
        )
        .await
        .expect("HTTP response");
        let response = serde_json::to_value(response).unwrap();
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
                    let response = self.relay.handle(&batch, "flow").await;
                    assert!(
                        response.batch_item_failures.is_empty(),
                        "the relay failed: {response:?}"
                    );
                }
            }
            for wired in &self.services {
                let queue = &wired.queue;
                let messages = self
                    .aws
                    .receive_raw(queue, 10, Duration::from_millis(200))
                    .await;
                if messages.is_empty() {
                    continue;
                }
                moved += messages.len();
                stats.messages += messages.len();
                let event = orderflow::testing::sqs_event::from_received(
                    &messages,
                    &queue.arn,
                    "us-east-1",
                )
                .expect("SqsEvent");
                let mut response = Default::default();
                for _ in 0..deliveries {
                    response = wired.consumer.process(&event).await.response();
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
            .table_name(self.table("analytics"))
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
        for wired in &self.services {
            total += self.aws.queue_depth(&wired.queue).await;
        }
        total
    }

    /// Every table's items by role, normalized so two runs can be compared: timestamps and
    /// expiry times removed, dated keys undated, JSON attributes parsed.
    pub async fn snapshot(&self) -> BTreeMap<&'static str, Vec<Value>> {
        let mut snapshot = BTreeMap::new();
        for (role, table) in &self.tables {
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
            snapshot.insert(*role, items);
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
