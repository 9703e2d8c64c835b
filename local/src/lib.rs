//! # orderflow-local
//!
//! A local Lambda service for the real function binaries, configured only by the template:
//! [`provision`] creates the template's resources in any AWS endpoint (moto, LocalStack,
//! DynamoDB Local, AWS), and [`Runner`] starts every function's binary behind a Lambda Runtime
//! API of its own, feeds it from the template's SQS and DynamoDB stream event sources with the
//! template's settings, and serves its `HttpApi` routes on a local port. No Docker.
//!
//! What it does not emulate: IAM (nothing is denied), CloudWatch (alarms, metrics, log
//! groups: each function logs to a file), KMS encryption, reserved concurrency and account
//! limits, Lambda's scaling ramp (instances start on demand up to the event source's
//! `MaximumConcurrency`), X-Ray (a trace id is passed, nothing collects it), and the
//! execution environment itself (the binary runs on this machine's OS and architecture).

pub mod filter;
pub mod function;
pub mod http_api;
pub mod logs;
pub mod metrics;
pub mod provision;
pub mod proxy;
pub mod sqs_source;
pub mod stream_source;
pub mod template;
pub mod trace;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use function::{Function, Launch, Outcome, Stats};
pub use logs::LogSink;
pub use provision::{Clients, FunctionSpec, ProvisionError, Stack};
pub use proxy::EndpointProxy;
pub use template::{Pseudo, Template, TemplateError};

/// How to run a template.
#[derive(Clone, Debug)]
pub struct Config {
    /// `infra/template.yaml`.
    pub template: PathBuf,
    /// `--param K=V` overrides.
    pub parameters: Vec<(String, String)>,
    /// Where the function binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// The stack name (prefixes resource names).
    pub stack_name: String,
    /// The region.
    pub region: String,
    /// The account id the endpoint uses in ARNs (moto 123456789012, LocalStack 000000000000);
    /// `None`: ask the endpoint (STS `GetCallerIdentity`), as the AWS CLI would.
    pub account_id: Option<String>,
    /// Where logs go.
    pub log_dir: PathBuf,
    /// Print every function's output on the terminal.
    pub verbose: bool,
    /// The HTTP API's port (0: any free one).
    pub http_port: u16,
    /// Deliver every stream batch twice.
    pub duplicate_stream_batches: bool,
}

/// Why the runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The template cannot be used.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Provisioning failed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A local port or file could not be opened.
    #[error("{0}")]
    Io(String),
    /// The endpoint did not say which account it is.
    #[error(
        "cannot ask the endpoint for its account id (STS GetCallerIdentity: {0}); give it with --account-id"
    )]
    Account(String),
}

/// The account the endpoint's credentials belong to, from STS `GetCallerIdentity`.
pub async fn account_id(sdk: &aws_config::SdkConfig) -> Result<String, RunnerError> {
    aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| RunnerError::Account(orderflow::aws::error_chain(&e)))?
        .account
        .ok_or_else(|| RunnerError::Account("the answer has no Account".into()))
}

static ENDPOINT_OVERRIDE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The endpoint every function gets as `AWS_ENDPOINT_URL` when this process was told one on
/// its command line rather than in its environment.
pub fn set_endpoint_override(endpoint: &str) {
    let _ = ENDPOINT_OVERRIDE.set(endpoint.to_owned());
}

/// The endpoint and credential variables passed on to every function (and nothing else from
/// this process's environment).
pub fn passthrough() -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_ENDPOINT_URL")
                || matches!(
                    k.as_str(),
                    "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"
                )
        })
        .collect();
    if let Some(endpoint) = ENDPOINT_OVERRIDE.get() {
        vars.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
    }
    vars.entry("AWS_ACCESS_KEY_ID".into())
        .or_insert_with(|| "test".into());
    vars.entry("AWS_SECRET_ACCESS_KEY".into())
        .or_insert_with(|| "test".into());
    vars
}

/// A running stack: its resources, its functions and their event sources.
pub struct Runner {
    /// What was provisioned.
    pub stack: Stack,
    functions: BTreeMap<String, Arc<Function>>,
    paused: BTreeMap<String, watch::Sender<bool>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    http: Option<SocketAddr>,
    streams: Vec<(Arc<AtomicUsize>, Arc<AtomicBool>, Arc<AtomicUsize>)>,
    queues: Vec<String>,
    sqs: aws_sdk_sqs::Client,
    proxy: Option<Arc<EndpointProxy>>,
    /// Logs.
    pub log: LogSink,
}

/// How long [`Runner::settle`] gives SNS to deliver a publish to the subscribed queues: on AWS
/// and LocalStack the delivery is asynchronous (moto's is not), so for a moment after a
/// publish every queue can look empty, and a quiet second alone is no proof that nothing is
/// on its way. The caller's own publishes (a test's, another system's) are covered from the
/// call on.
pub const SNS_DELIVERY_GRACE: Duration = Duration::from_secs(3);

/// The caller name of a function's event sources in the proxy's tally.
pub fn event_source_caller(logical_id: &str) -> String {
    format!("{logical_id} event source")
}

/// `vars` with every endpoint variable replaced by `endpoint`.
fn with_endpoint(vars: &BTreeMap<String, String>, endpoint: &str) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = vars
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_ENDPOINT_URL"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.insert("AWS_ENDPOINT_URL".into(), endpoint.to_owned());
    vars
}

impl Runner {
    /// Provisions the template into the endpoint `sdk` reaches and starts everything.
    pub async fn start(config: Config, sdk: &aws_config::SdkConfig) -> Result<Runner, RunnerError> {
        let account_id = match &config.account_id {
            Some(account_id) => account_id.clone(),
            None => account_id(sdk).await?,
        };
        let template = Template::load(
            &config.template,
            &config.parameters,
            Pseudo {
                stack_name: config.stack_name.clone(),
                region: config.region.clone(),
                account_id: account_id.clone(),
            },
        )?;
        let log = LogSink::new(&config.log_dir, config.verbose).map_err(|e| {
            RunnerError::Io(format!(
                "cannot write logs to {}: {e}",
                config.log_dir.display()
            ))
        })?;
        let clients = Clients {
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
        };
        let stack = provision::provision(&template, &clients).await?;
        for (id, kind, what) in &stack.log {
            log.runner(&format!("{id} ({kind}): {what}"));
        }
        let bin_dir = std::fs::canonicalize(&config.bin_dir).map_err(|e| {
            RunnerError::Io(format!(
                "no binaries in {} ({e}): build them first (cargo build --workspace --bins)",
                config.bin_dir.display()
            ))
        })?;
        let launch = Launch {
            bin_dir,
            region: config.region.clone(),
            account_id,
            passthrough: passthrough(),
        };
        // Every function and event source reaches the endpoint through the metering proxy
        // (when the endpoint is an emulator's): requests counted by caller, faults on demand.
        let proxy = proxy::Upstreams::from_vars(&launch.passthrough)
            .map_err(RunnerError::Io)?
            .map(|upstreams| Arc::new(EndpointProxy::new(upstreams)));
        let endpoint_of = async |caller: &str| -> Result<Option<String>, RunnerError> {
            match &proxy {
                Some(proxy) => proxy.endpoint_for(caller).await.map(Some).map_err(|e| {
                    RunnerError::Io(format!("cannot open a proxy port for {caller}: {e}"))
                }),
                None => Ok(None),
            }
        };
        let (stop, _) = watch::channel(false);
        let mut runner = Runner {
            stack: stack.clone(),
            functions: BTreeMap::new(),
            paused: BTreeMap::new(),
            stop,
            tasks: Vec::new(),
            http: None,
            streams: Vec::new(),
            queues: Vec::new(),
            sqs: clients.sqs.clone(),
            proxy: proxy.clone(),
            log: log.clone(),
        };
        let mut routes = Vec::new();
        for spec in &stack.functions {
            let instances = spec
                .sqs
                .iter()
                .map(|s| s.maximum_concurrency)
                .sum::<usize>()
                + spec.streams.len()
                + if spec.routes.is_empty() { 0 } else { 4 };
            let mut function_launch = launch.clone();
            if let Some(endpoint) = endpoint_of(&spec.logical_id).await? {
                function_launch.passthrough = with_endpoint(&launch.passthrough, &endpoint);
            }
            let function = Arc::new(Function::new(
                spec.clone(),
                function_launch,
                instances,
                log.clone(),
            ));
            // The event sources' own requests (receive, delete, stream reads) are counted as
            // the function's event source, as Lambda's pollers make them on its behalf.
            let (source_sqs, streams_client) =
                match endpoint_of(&event_source_caller(&spec.logical_id)).await? {
                    Some(endpoint) => (
                        aws_sdk_sqs::Client::from_conf(
                            aws_sdk_sqs::config::Builder::from(sdk)
                                .endpoint_url(&endpoint)
                                .build(),
                        ),
                        aws_sdk_dynamodbstreams::Client::from_conf(
                            aws_sdk_dynamodbstreams::config::Builder::from(sdk)
                                .endpoint_url(&endpoint)
                                .build(),
                        ),
                    ),
                    None => (
                        clients.sqs.clone(),
                        aws_sdk_dynamodbstreams::Client::new(sdk),
                    ),
                };
            let (paused, _) = watch::channel(false);
            for source in &spec.sqs {
                runner.queues.push(source.queue_url.clone());
                for _ in 0..source.maximum_concurrency.max(1) {
                    runner.tasks.push(tokio::spawn(sqs_source::poll(
                        source.clone(),
                        function.clone(),
                        source_sqs.clone(),
                        config.region.clone(),
                        paused.subscribe(),
                        runner.stop.subscribe(),
                        log.clone(),
                    )));
                }
            }
            for source in &spec.streams {
                let poller = stream_source::StreamPoller {
                    source: source.clone(),
                    function: function.clone(),
                    streams: streams_client.clone(),
                    sqs: source_sqs.clone(),
                    region: config.region.clone(),
                    duplicate_batches: config.duplicate_stream_batches,
                    log: log.clone(),
                    pending: Arc::new(AtomicUsize::new(0)),
                    caught_up: Arc::new(AtomicBool::new(false)),
                    empty_passes: Arc::new(AtomicUsize::new(0)),
                };
                runner.streams.push((
                    poller.pending.clone(),
                    poller.caught_up.clone(),
                    poller.empty_passes.clone(),
                ));
                runner.tasks.push(tokio::spawn(
                    poller.run(paused.subscribe(), runner.stop.subscribe()),
                ));
            }
            for route in &spec.routes {
                routes.push(http_api::Bound {
                    method: route.method.clone(),
                    path: route.path.clone(),
                    function: function.clone(),
                });
            }
            runner.paused.insert(spec.logical_id.clone(), paused);
            runner.functions.insert(spec.logical_id.clone(), function);
        }
        if !routes.is_empty() {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.http_port))
                .await
                .map_err(|e| {
                    RunnerError::Io(format!(
                        "cannot serve the HTTP API on port {}: {e}",
                        config.http_port
                    ))
                })?;
            runner.http = listener.local_addr().ok();
            runner
                .tasks
                .push(tokio::spawn(http_api::serve(listener, routes)));
        }
        Ok(runner)
    }

    /// The metering proxy every function and event source reaches the endpoint through
    /// (`None` when the endpoint is not an emulator's).
    pub fn proxy(&self) -> Option<&Arc<EndpointProxy>> {
        self.proxy.as_ref()
    }

    /// The HTTP API's base URL.
    pub fn http_url(&self) -> Option<String> {
        self.http.map(|a| format!("http://{a}"))
    }

    /// A function by logical id (`PaymentFunction`) or binary name (`payment`).
    pub fn function(&self, name: &str) -> Option<&Arc<Function>> {
        self.functions
            .get(name)
            .or_else(|| self.functions.values().find(|f| f.spec.binary == name))
    }

    /// Every function, by logical id.
    pub fn functions(&self) -> &BTreeMap<String, Arc<Function>> {
        &self.functions
    }

    fn paused(&self, name: &str) -> Option<&watch::Sender<bool>> {
        let id = self.function(name)?.spec.logical_id.clone();
        self.paused.get(&id)
    }

    /// Stops a function: its event sources stop polling (messages wait in its queue) and its
    /// instances are stopped.
    pub async fn stop_function(&self, name: &str) {
        if let Some(paused) = self.paused(name) {
            let _ = paused.send(true);
        }
        if let Some(function) = self.function(name) {
            // Let an invocation in flight finish, as a disabled event source mapping does.
            let until = Instant::now() + function.spec.timeout;
            while function.in_flight() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            function.kill_all().await;
        }
    }

    /// Starts a stopped function's event sources again.
    pub fn start_function(&self, name: &str) {
        if let Some(paused) = self.paused(name) {
            let _ = paused.send(false);
        }
    }

    /// Kills every instance of a function with `SIGKILL`, busy or not; returns how many.
    pub async fn kill_function(&self, name: &str) -> usize {
        match self.function(name) {
            Some(function) => function.kill_all().await,
            None => 0,
        }
    }

    /// Process ids of every running instance.
    pub fn pids(&self) -> Vec<u32> {
        self.functions.values().flat_map(|f| f.pids()).collect()
    }

    /// What each function did, by logical id.
    pub fn stats(&self) -> BTreeMap<String, Stats> {
        self.functions
            .iter()
            .map(|(id, f)| (id.clone(), f.stats()))
            .collect()
    }

    /// Messages still in the event sources' queues, visible or in flight.
    pub async fn queued(&self) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let mut total = 0;
        for url in &self.queues {
            let Ok(out) = self
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(A::ApproximateNumberOfMessages)
                .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(A::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
            else {
                return usize::MAX;
            };
            for value in out.attributes().into_iter().flat_map(|a| a.values()) {
                total += value.parse::<usize>().unwrap_or(0);
            }
        }
        total
    }

    /// Waits until nothing moves: no invocation running, every queue empty (in-flight and
    /// delayed messages included), every stream read to its end, for a second in a row, and
    /// no SNS publish for [`SNS_DELIVERY_GRACE`] (since the call, or since a function's last
    /// publish through the proxy). `progress` hears how much is left; gives up at `deadline`.
    pub async fn settle(&self, deadline: Duration, progress: &dyn Fn(usize)) -> Result<(), String> {
        let called = Instant::now();
        let until = called + deadline;
        let mut quiet = 0;
        // Empty passes over each stream when the quiet began: a stream counts as read to its
        // end only after a pass that started within the quiet period found nothing.
        let mut passes_at_quiet: Vec<usize> = Vec::new();
        loop {
            if Instant::now() > until {
                return Err(format!(
                    "still moving after {} s: {} queued, {} invocations running",
                    deadline.as_secs(),
                    self.queued().await,
                    self.functions
                        .values()
                        .map(|f| f.in_flight())
                        .sum::<usize>()
                ));
            }
            let running: usize = self.functions.values().map(|f| f.in_flight()).sum();
            let streaming: usize = self
                .streams
                .iter()
                .map(|(pending, caught_up, _)| {
                    pending.load(Ordering::SeqCst) + usize::from(!caught_up.load(Ordering::SeqCst))
                })
                .sum();
            let queued = self.queued().await;
            let left = running + streaming + queued;
            progress(left);
            if left == 0 {
                if quiet == 0 {
                    passes_at_quiet = self
                        .streams
                        .iter()
                        .map(|(_, _, passes)| passes.load(Ordering::SeqCst))
                        .collect();
                }
                quiet += 1;
                let streams_read = self
                    .streams
                    .iter()
                    .zip(&passes_at_quiet)
                    .all(|((_, _, passes), at)| passes.load(Ordering::SeqCst) >= at + 2);
                // A message SNS accepted but has not yet handed to a queue is in no queue.
                let last_publish = self
                    .proxy
                    .as_ref()
                    .and_then(|proxy| proxy.tally().last_publish())
                    .map_or(called, |at| at.max(called));
                let delivered = last_publish.elapsed() >= SNS_DELIVERY_GRACE;
                if quiet >= 4 && streams_read && delivered {
                    return Ok(());
                }
            } else {
                quiet = 0;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops every poller, server and instance.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for function in self.functions.values() {
            function.kill_all().await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}
