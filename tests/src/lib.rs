//! Support for black-box tests against an AWS API emulator (moto or LocalStack) or AWS itself.
//!
//! The tests reach the emulator the way every orderflow binary does: through the standard
//! `AWS_ENDPOINT_URL`. `make test` starts moto and sets it; without it these tests fail with a
//! message saying so, never skip. Every test creates its own uniquely named resources, so tests
//! run in parallel and against a shared emulator.
//!
//! SNS→SQS delivery is asynchronous on AWS and LocalStack (synchronous on moto): tests wait for
//! messages by long polling up to a deadline, never assume they are there.

// Test code: a failed call is a failed test, and the panic message says which.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod chaos;
pub mod conflicts;
pub mod flow;
pub mod http;
pub mod interceptors;
pub mod requests;
pub mod services;
pub mod stack;
pub mod streams;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use orderflow::Event;
use orderflow::sns::{SqsBody, message_body};
use serde_json::json;

/// How long a test waits for a message that should arrive.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a test watches a queue to show that a message does not arrive.
pub const ABSENCE_GRACE: Duration = Duration::from_secs(3);

/// Clients for the emulator named by `AWS_ENDPOINT_URL`.
pub struct Emulator {
    /// The shared SDK configuration.
    pub config: SdkConfig,
    /// SNS client.
    pub sns: aws_sdk_sns::Client,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB client.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The endpoint every client talks to.
    pub endpoint: String,
}

/// An SQS queue created for one test.
#[derive(Clone, Debug)]
pub struct Queue {
    /// Queue URL, for SQS calls.
    pub url: String,
    /// Queue ARN, for subscriptions.
    pub arn: String,
}

/// A message received from a queue, with its body unwrapped.
#[derive(Clone, Debug)]
pub struct Received {
    /// The SQS body exactly as delivered.
    pub body: String,
    /// Whether SNS wrapped the message in a notification (raw delivery off).
    pub wrapped: bool,
    /// The published message (the notification's `Message`, or the body).
    pub message: String,
    /// Message attributes, as `name -> (type, value)`: from the notification when wrapped,
    /// from the SQS message attributes when raw.
    pub attributes: BTreeMap<String, (String, String)>,
    /// SQS system attributes (`MessageGroupId`, `SequenceNumber`, …).
    pub system_attributes: BTreeMap<String, String>,
}

impl Received {
    /// Decodes the published message as an orderflow event.
    pub fn event(&self) -> Event {
        Event::decode(self.message.as_bytes()).unwrap_or_else(|err| {
            panic!(
                "delivered message is not a valid event: {err}\n{}",
                self.message
            )
        })
    }
}

/// Connects to the emulator, or panics saying why it cannot.
pub async fn emulator() -> Emulator {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need an AWS API emulator. \
             Run `make test`, which starts moto and sets it."
        )
    });
    let address = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if let Err(err) = tokio::net::TcpStream::connect(address).await {
        panic!(
            "the emulator at {endpoint} is not reachable ({err}). Run `make test`, which starts it."
        );
    }
    let config = orderflow::aws::sdk_config().await;
    Emulator {
        sns: aws_sdk_sns::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        config,
        endpoint,
    }
}

/// Runs `check` every 300 ms until it holds; panics with its last answer after `deadline`.
/// For end states reached through asynchronous hops (SNS to SQS, a stream), which no single
/// look can prove have all arrived.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let until = Instant::now() + deadline;
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if Instant::now() >= until => {
                panic!("not so after {} s: {last}", deadline.as_secs())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// A resource name no other test uses: `of-<prefix>-<8 hex>`.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "of-{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Timeouts for creating a test's resources (topics, queues, subscriptions, tables).
///
/// Longer than the functions' own ([`orderflow::aws::timeouts`]): what a test checks is not how
/// fast the emulator creates a table, and on CI's two cores, with the suite's other tests
/// running, moto has taken longer than the 8 s operation budget to answer a `CreateTable`.
pub fn setup_timeouts() -> aws_smithy_types::timeout::TimeoutConfig {
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(90))
        .build()
}

/// A SNS request's config override with [`setup_timeouts`] (`.customize().config_override(…)`).
pub fn sns_setup() -> aws_sdk_sns::config::Builder {
    aws_sdk_sns::config::Builder::default().timeout_config(setup_timeouts())
}

/// A SQS request's config override with [`setup_timeouts`] (`.customize().config_override(…)`).
pub fn sqs_setup() -> aws_sdk_sqs::config::Builder {
    aws_sdk_sqs::config::Builder::default().timeout_config(setup_timeouts())
}

/// A DynamoDB request's config override with [`setup_timeouts`] (`.customize().config_override(…)`).
pub fn dynamodb_setup() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default().timeout_config(setup_timeouts())
}

impl Emulator {
    /// Creates a topic (FIFO if `fifo`), returning its ARN.
    pub async fn topic(&self, prefix: &str, fifo: bool) -> String {
        let mut name = unique_name(prefix);
        let mut request = self.sns.create_topic();
        if fifo {
            name.push_str(".fifo");
            request = request.attributes("FifoTopic", "true");
        }
        let out = request
            .name(name)
            .customize()
            .config_override(sns_setup())
            .send()
            .await
            .expect("CreateTopic");
        out.topic_arn().expect("topic ARN").to_owned()
    }

    /// Creates a queue (FIFO if `fifo`) whose policy lets SNS topics of this account send to it.
    pub async fn queue(&self, prefix: &str, fifo: bool) -> Queue {
        let mut name = unique_name(prefix);
        let mut request = self.sqs.create_queue();
        if fifo {
            name.push_str(".fifo");
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let url = request
            .queue_name(name)
            .customize()
            .config_override(sqs_setup())
            .send()
            .await
            .expect("CreateQueue")
            .queue_url()
            .expect("queue URL")
            .to_owned();
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .customize()
            .config_override(sqs_setup())
            .send()
            .await
            .expect("GetQueueAttributes");
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .expect("queue ARN")
            .clone();
        Queue { url, arn }
    }

    /// Subscribes `queue` to `topic_arn`, with raw delivery and a filter policy if given, and
    /// grants the topic (only) permission to send to the queue, as AWS requires.
    pub async fn subscribe(
        &self,
        topic_arn: &str,
        queue: &Queue,
        raw: bool,
        filter_policy: Option<serde_json::Value>,
    ) -> String {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": queue.arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}
            }]
        });
        self.sqs
            .set_queue_attributes()
            .queue_url(&queue.url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .customize()
            .config_override(sqs_setup())
            .send()
            .await
            .expect("SetQueueAttributes Policy");
        let mut request = self
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .return_subscription_arn(true);
        if raw {
            request = request.attributes("RawMessageDelivery", "true");
        }
        if let Some(policy) = filter_policy {
            request = request.attributes("FilterPolicy", policy.to_string());
        }
        request
            .customize()
            .config_override(sns_setup())
            .send()
            .await
            .expect("Subscribe")
            .subscription_arn()
            .expect("subscription ARN")
            .to_owned()
    }

    /// Creates a queue and its DLQ: the queue redrives to the DLQ after `max_receive_count`
    /// receives and hides a received message for `visibility_timeout` seconds.
    pub async fn queue_with_dlq(
        &self,
        prefix: &str,
        max_receive_count: u32,
        visibility_timeout: u32,
    ) -> (Queue, Queue) {
        let dlq = self.queue(&format!("{prefix}-dlq"), false).await;
        let queue = self.queue(prefix, false).await;
        let redrive = json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max_receive_count.to_string()});
        self.sqs
            .set_queue_attributes()
            .queue_url(&queue.url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.to_string(),
            )
            .customize()
            .config_override(sqs_setup())
            .send()
            .await
            .expect("SetQueueAttributes RedrivePolicy");
        (queue, dlq)
    }

    /// Receives `expected` messages without deleting them (up to the deadline), with every
    /// attribute, as a Lambda event source mapping does.
    pub async fn receive_raw(
        &self,
        queue: &Queue,
        expected: usize,
        deadline: Duration,
    ) -> Vec<Message> {
        let until = Instant::now() + deadline;
        let mut messages = Vec::new();
        while messages.len() < expected && Instant::now() < until {
            // Long poll unless the caller only wants a quick look.
            let wait = if deadline < Duration::from_secs(1) {
                0
            } else {
                1
            };
            messages.extend(
                self.receive_messages(&queue.url, expected - messages.len(), wait, None)
                    .await,
            );
        }
        messages
    }

    /// The Lambda `SqsEvent` for `expected` messages received from `queue`.
    pub async fn sqs_event(
        &self,
        queue: &Queue,
        expected: usize,
    ) -> (aws_lambda_events::event::sqs::SqsEvent, Vec<Message>) {
        let messages = self.receive_raw(queue, expected, DELIVERY_DEADLINE).await;
        assert_eq!(
            messages.len(),
            expected,
            "messages that reached {}",
            queue.url
        );
        let event =
            orderflow::testing::sqs_event::from_received(&messages, &queue.arn, "us-east-1")
                .expect("SqsEvent");
        (event, messages)
    }

    /// What the event source mapping does after an invocation: deletes every message that is
    /// not in `batchItemFailures`.
    pub async fn acknowledge(
        &self,
        queue: &Queue,
        messages: &[Message],
        response: &aws_lambda_events::event::sqs::SqsBatchResponse,
    ) {
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for message in messages
            .iter()
            .filter(|m| !failed.contains(&m.message_id().unwrap_or_default()))
        {
            self.sqs
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }

    /// Messages in `queue`, visible or waiting out a visibility timeout.
    pub async fn queue_depth(&self, queue: &Queue) -> usize {
        self.depth_of(&queue.url).await
    }

    /// Messages in the queue at `url`, visible or waiting out a visibility timeout.
    pub async fn depth_of(&self, url: &str) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes");
        out.attributes()
            .into_iter()
            .flat_map(|a| a.values())
            .filter_map(|n| n.parse::<usize>().ok())
            .sum()
    }

    /// One `ReceiveMessage` with every attribute, as an event source mapping asks: up to `max`
    /// (at most 10) messages, long polling up to `wait_seconds`, with `visibility` seconds of
    /// visibility timeout (0: look without taking; `None`: the queue's own).
    pub async fn receive_messages(
        &self,
        url: &str,
        max: usize,
        wait_seconds: i32,
        visibility: Option<i32>,
    ) -> Vec<Message> {
        // An emulator starved of CPU (a 2-core runner, several tests at once) can take longer
        // than the client's operation timeout; a poller asks again, and so does this.
        let mut attempts = 0;
        loop {
            let answer = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(max.clamp(1, 10) as i32)
                .wait_time_seconds(wait_seconds)
                .set_visibility_timeout(visibility)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            match answer {
                Ok(out) => return out.messages.unwrap_or_default(),
                Err(aws_sdk_sqs::error::SdkError::TimeoutError(_)) if attempts < 3 => attempts += 1,
                Err(err) => panic!("ReceiveMessage: {err:?}"),
            }
        }
    }

    /// Creates a pay-per-request table with string partition key `key`, and waits until it is
    /// active.
    pub async fn table(&self, prefix: &str, key: &str) -> String {
        self.create_table(prefix, key, None, false).await
    }

    /// Creates a pay-per-request table keyed by string `hash` (and `range`), with a `NEW_IMAGE`
    /// stream if `stream`, and waits until it is active.
    pub async fn create_table(
        &self,
        prefix: &str,
        hash: &str,
        range: Option<&str>,
        stream: bool,
    ) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            StreamSpecification, StreamViewType,
        };
        let name = unique_name(prefix);
        let mut request = self
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
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(key_type)
                        .build()
                        .unwrap(),
                );
        }
        if stream {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .unwrap(),
            );
        }
        match request
            .customize()
            .config_override(dynamodb_setup())
            .send()
            .await
        {
            Ok(_) => {}
            // An attempt that timed out may have created the table before the SDK retried; the
            // name is this test's own, so the table found is the one it asked for.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => panic!("CreateTable: {err:?}"),
        }
        self.wait_until_active(&name).await;
        name
    }

    /// Polls `DescribeTable` (with [`setup_timeouts`]) until `table` is active, for a minute.
    async fn wait_until_active(&self, table: &str) {
        use aws_sdk_dynamodb::types::TableStatus;
        eventually(Duration::from_secs(60), || async {
            let status = self
                .dynamodb
                .describe_table()
                .table_name(table)
                .customize()
                .config_override(dynamodb_setup())
                .send()
                .await
                .map(|out| out.table().and_then(|t| t.table_status().cloned()));
            match status {
                Ok(Some(TableStatus::Active)) => Ok(()),
                other => Err(format!("table {table} is not active: {other:?}")),
            }
        })
        .await;
    }

    /// Receives (and deletes) messages until `expected` have arrived or the deadline passes;
    /// returns what arrived, in arrival order.
    pub async fn receive(
        &self,
        queue: &Queue,
        expected: usize,
        deadline: Duration,
    ) -> Vec<Received> {
        let until = Instant::now() + deadline;
        let mut received = Vec::new();
        while received.len() < expected {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            received.extend(
                self.receive_once(queue, left.min(Duration::from_secs(2)))
                    .await,
            );
        }
        received
    }

    /// Receives (and deletes) whatever arrives within `wait`.
    pub async fn receive_for(&self, queue: &Queue, wait: Duration) -> Vec<Received> {
        let until = Instant::now() + wait;
        let mut received = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return received;
            }
            received.extend(
                self.receive_once(queue, left.min(Duration::from_secs(1)))
                    .await,
            );
        }
    }

    async fn receive_once(&self, queue: &Queue, wait: Duration) -> Vec<Received> {
        let wait = wait.as_secs().clamp(1, 20) as i32;
        let messages = self.receive_messages(&queue.url, 10, wait, None).await;
        let mut received = Vec::new();
        for message in &messages {
            self.sqs
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(message.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("DeleteMessage");
            received.push(unwrap(message));
        }
        received
    }
}

fn unwrap(message: &Message) -> Received {
    let body = message.body().unwrap_or_default().to_owned();
    let system_attributes = message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let (wrapped, published, attributes) = match message_body(&body) {
        SqsBody::Notification(n) => (
            true,
            n.message.clone(),
            n.message_attributes
                .iter()
                .map(|(k, v)| (k.clone(), (v.data_type.clone(), v.value.clone())))
                .collect(),
        ),
        SqsBody::Control(_) | SqsBody::Raw(_) => (
            false,
            body.clone(),
            message
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                (
                                    v.data_type().to_owned(),
                                    v.string_value().unwrap_or_default().to_owned(),
                                ),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
    };
    Received {
        body,
        wrapped,
        message: published,
        attributes,
        system_attributes,
    }
}

/// The `orderflow` CLI binary built beside the test binary (`cargo build --workspace` builds it).
pub fn orderflow_cli() -> PathBuf {
    // target/<profile>/deps/<test> or target/<profile>/<bin> -> target/<profile>/orderflow
    let cli = stack::bin_dir().join(format!("orderflow{}", std::env::consts::EXE_SUFFIX));
    assert!(
        cli.exists(),
        "{} does not exist: run `cargo build --workspace` first (make test does)",
        cli.display()
    );
    cli
}

/// The AWS CLI (`aws`), from `ORDERFLOW_AWS_CLI` or the PATH (`make test` installs it in .venv).
pub fn aws_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("ORDERFLOW_AWS_CLI") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("aws"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("the AWS CLI (`aws`) is not on PATH: run `make test`, which installs it in .venv")
    })
}

/// The expected message attributes of `event`, as `name -> (type, value)`.
pub fn expected_attributes(event: &Event) -> BTreeMap<String, (String, String)> {
    BTreeMap::from([
        (
            "correlationId".to_owned(),
            ("String".to_owned(), event.correlation_id.clone()),
        ),
        (
            "eventType".to_owned(),
            ("String".to_owned(), event.event_type().to_string()),
        ),
        (
            "eventVersion".to_owned(),
            ("Number".to_owned(), event.event_version().to_string()),
        ),
    ])
}

/// A Lambda SQS event carrying `events` as raw-delivery bodies, one record each (message ids
/// `m0`, `m1`, …), from the queue `queue_arn`.
pub fn sqs_event_of(events: &[Event], queue_arn: &str) -> aws_lambda_events::event::sqs::SqsEvent {
    orderflow::testing::sqs_event::raw(events, queue_arn).expect("valid events")
}

/// Runs the `orderflow` CLI built with this code with `args` against the emulator at
/// `endpoint`: exit code, standard output, standard error.
pub fn run_orderflow(endpoint: &str, args: &[&str]) -> (i32, String, String) {
    let output = orderflow_command(endpoint)
        .args(args)
        .output()
        .expect("the orderflow binary is built (cargo build --workspace)");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `orderflow` CLI built with this code, pointed at the emulator at `endpoint`.
pub fn orderflow_command(endpoint: &str) -> std::process::Command {
    let mut command = std::process::Command::new(orderflow_cli());
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    command
}
