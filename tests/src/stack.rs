//! The system as it ships: `infra/template.yaml` provisioned into the emulator and the real
//! function binaries run by the local Lambda service (`orderflow-local`), with the helpers
//! the end-to-end tests and `make run` share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use orderflow_local::{Config, Runner};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::Emulator;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Where `cargo build` put the binaries this code was built with (`target/debug`).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("ORDERFLOW_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            // target/<profile>/deps/<test> or target/<profile>/<bin>
            let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
            if dir.ends_with("deps") {
                dir.parent().map(PathBuf::from).unwrap_or(dir)
            } else {
                dir
            }
        })
}

/// A message waiting in a DLQ, as an operator sees it.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The body.
    pub body: String,
    /// `errorKind` (empty when the redrive policy moved it).
    pub error_kind: String,
    /// `errorMessage`.
    pub error_message: String,
    /// `receiveCount`: how often the consumer had received it when it gave up (0 when the
    /// redrive policy moved it).
    pub receive_count: u32,
}

/// The running system.
pub struct Deployed {
    /// The local Lambda service.
    pub runner: Runner,
    /// Clients for the emulator.
    pub aws: Emulator,
    /// Where every function's output goes, one file per function.
    pub log_dir: std::path::PathBuf,
}

impl Deployed {
    /// Provisions `infra/template.yaml` (with `params`) and starts every function.
    pub async fn start(
        name: &str,
        params: &[(&str, &str)],
        duplicate_stream_batches: bool,
    ) -> Deployed {
        Self::start_template(
            &repo().join("infra/template.yaml"),
            name,
            params,
            duplicate_stream_batches,
        )
        .await
    }

    /// Provisions `template` and starts every function.
    pub async fn start_template(
        template: &std::path::Path,
        name: &str,
        params: &[(&str, &str)],
        duplicate_stream_batches: bool,
    ) -> Deployed {
        let aws = crate::emulator().await;
        let stack_name = crate::unique_name(name);
        let log_dir = repo().join("target/local-logs").join(&stack_name);
        let config = Config {
            template: template.to_owned(),
            parameters: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            bin_dir: bin_dir(),
            stack_name: stack_name.clone(),
            region: "us-east-1".into(),
            account_id: None,
            log_dir: log_dir.clone(),
            verbose: std::env::var_os("ORDERFLOW_LOCAL_VERBOSE").is_some(),
            http_port: 0,
            duplicate_stream_batches,
        };
        let runner = Runner::start(config, &aws.config)
            .await
            .unwrap_or_else(|err| panic!("the local stack did not start: {err}"));
        Deployed {
            runner,
            aws,
            log_dir,
        }
    }

    /// Everything the functions have written so far, every function's file in turn.
    pub fn function_logs(&self) -> String {
        let mut entries: Vec<_> = std::fs::read_dir(&self.log_dir)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        entries
            .iter()
            .filter(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with("Function.log"))
            })
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect()
    }

    /// An output of the stack (`EventsTopicArn`, `InventoryTableName`, …).
    pub fn output(&self, name: &str) -> String {
        self.runner
            .stack
            .outputs
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("the stack has no output {name}"))
    }

    /// The HTTP API's base URL.
    pub fn url(&self) -> String {
        self.runner
            .http_url()
            .expect("the template has an HTTP API")
    }

    /// Sets a SKU's stock.
    pub async fn seed_stock(&self, sku: &str, units: u32) {
        inventory::DynamoInventoryStore::new(
            self.aws.dynamodb.clone(),
            self.output("InventoryTableName"),
        )
        .set_stock(sku, units)
        .await
        .expect("seed stock");
    }

    /// A SKU's stock.
    pub async fn stock(&self, sku: &str) -> Option<i64> {
        let item = self
            .item("InventoryTableName", &[("pk", &format!("SKU#{sku}"))])
            .await?;
        item.get("stock").and_then(Value::as_i64)
    }

    /// One item of a table (by output name), as JSON.
    pub async fn item(
        &self,
        table_output: &str,
        key: &[(&str, &str)],
    ) -> Option<BTreeMap<String, Value>> {
        let mut request = self
            .aws
            .dynamodb
            .get_item()
            .table_name(self.output(table_output))
            .consistent_read(true);
        for (name, value) in key {
            request = request.key(*name, AttributeValue::S((*value).to_owned()));
        }
        let out = request.send().await.expect("GetItem");
        out.item()
            .map(|i| serde_dynamo::from_item(i.clone()).expect("item"))
    }

    /// Every item of a table (by output name), as JSON.
    pub async fn scan(&self, table_output: &str) -> Vec<BTreeMap<String, Value>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .aws
                .dynamodb
                .scan()
                .table_name(self.output(table_output))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("Scan");
            items.extend(
                out.items()
                    .iter()
                    .map(|i| serde_dynamo::from_item(i.clone()).expect("item")),
            );
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return items,
            }
        }
    }

    /// The analytics counters, shards added up, by counter key.
    pub async fn analytics(&self) -> BTreeMap<String, BTreeMap<String, Decimal>> {
        let rows: Vec<(String, Vec<(String, Decimal)>)> = self
            .scan("AnalyticsTableName")
            .await
            .into_iter()
            .map(|item| {
                let key = item
                    .get("pk")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let amounts = item
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.to_string().parse::<Decimal>().ok()?)))
                    .collect();
                (key, amounts)
            })
            .collect();
        analytics::sum_shards(rows.iter().map(|(k, a)| (k.as_str(), a.clone())))
    }

    /// The DLQ outputs: (service, URL).
    pub fn dead_letter_queues(&self) -> Vec<(String, String)> {
        let mut queues: Vec<(String, String)> = self
            .runner
            .stack
            .outputs
            .iter()
            .filter_map(|(name, url)| {
                let service = name.strip_suffix("DeadLetterQueueUrl")?;
                Some((service.to_owned(), url.clone()))
            })
            .collect();
        queues.push((
            "OutboxRelayFailure".into(),
            self.output("OutboxRelayFailureQueueUrl"),
        ));
        queues
    }

    /// What waits in the queue at `url`, looked at without taking it away: every message, read
    /// as the operator's tool reads a DLQ (`orderflow dlq list`: each held a moment, then made
    /// visible again), so a queue of more than ten is read whole.
    pub async fn peek(&self, url: &str) -> Vec<DeadLetter> {
        let dlq = orderflow::dlq::Dlq::new(self.aws.sqs.clone());
        let queue = dlq.resolve(url).await.expect("the DLQ resolves");
        // No limit: the reader stops once the queue gives nothing new.
        dlq.peek(&queue, usize::MAX)
            .await
            .expect("the DLQ can be read")
            .into_iter()
            .map(|message| DeadLetter {
                body: message.body,
                error_kind: message.error_kind.unwrap_or_default(),
                error_message: message.error_message.unwrap_or_default(),
                receive_count: message.receive_count.unwrap_or(0),
            })
            .collect()
    }

    /// Messages in the queue at `url` (visible or not).
    pub async fn depth(&self, url: &str) -> usize {
        self.aws.depth_of(url).await
    }

    /// Waits until nothing moves (at most `deadline`).
    pub async fn settle(&self, deadline: Duration) {
        if let Err(err) = self.runner.settle(deadline, &|_| {}).await {
            panic!("{err}");
        }
    }

    /// Stops every function and the servers.
    pub async fn stop(self) {
        self.runner.shutdown().await;
    }
}
