//! Running one function as Lambda does: each instance is the real binary, started with the
//! environment Lambda gives plus the template's, talking to its own Runtime API
//! (`/2018-06-01/runtime/invocation/next`, `/response`, `/error`, `/init/error`). At most
//! `max_instances` run at once; an instance that overruns the function's timeout is killed and
//! the next invocation starts cold; an init error or a crash is reported with the instance's
//! last log lines, and new instances start with backoff.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, Semaphore, oneshot};

use crate::logs::LogSink;
use crate::provision::FunctionSpec;

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `/response`: the payload.
    Response(Bytes),
    /// `/error`: the function's error.
    Error {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// The function overran its timeout and was killed.
    Timeout(Duration),
    /// The instance could not start (`/init/error`, or it exited before asking for work).
    InitError(String),
    /// The instance died during the invocation.
    Crashed(String),
}

impl Outcome {
    /// Whether the function answered with a response.
    pub fn is_response(&self) -> bool {
        matches!(self, Outcome::Response(_))
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Response(_) => "ok".into(),
            Outcome::Error {
                error_type,
                message,
            } => format!("error {error_type}: {message}"),
            Outcome::Timeout(after) => format!("timed out after {} s, killed", after.as_secs()),
            Outcome::InitError(why) => format!("init failed: {why}"),
            Outcome::Crashed(why) => format!("crashed: {why}"),
        }
    }
}

/// Counts of what a function did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Invocations.
    pub invocations: usize,
    /// Records handed over (SQS messages, stream records; 1 for an HTTP request).
    pub records: usize,
    /// Records the function reported failed, or that were in a failed invocation.
    pub failed_records: usize,
    /// Invocations that did not end with a response.
    pub failed_invocations: usize,
    /// Cold starts.
    pub cold_starts: usize,
    /// Each cold start's init: from starting the process to its first request for work (what
    /// Lambda reports as `Init Duration`), in order.
    pub init_durations: Vec<Duration>,
    /// The largest resident set an instance reached, in KiB (Linux's `VmHWM`, read when each
    /// invocation ends; Lambda's `Max Memory Used`).
    pub max_rss_kib: u64,
    /// Durations of the invocations, in order (a cold start's includes its init, as Lambda
    /// bills a custom runtime's).
    pub durations: Vec<Duration>,
    /// Durations of each instance's first invocation, init not included: what a cold start
    /// leaves for the first request to do (connections, lazily built clients).
    pub first_invocations: Vec<Duration>,
}

/// One invocation waiting for an instance to ask for it.
struct Pending {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
    trace_id: String,
}

/// What an instance's Runtime API shares with the pool.
#[derive(Default)]
struct Channel {
    queue: Mutex<VecDeque<Pending>>,
    available: Notify,
    results: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    asked_once: Mutex<bool>,
    /// When the instance first asked for work.
    first_asked: Mutex<Option<Instant>>,
    init_error: Mutex<Option<String>>,
}

/// A running instance of the function.
struct Instance {
    /// When its process was started.
    started: Instant,
    channel: Arc<Channel>,
    child: tokio::sync::Mutex<tokio::process::Child>,
    pid: u32,
    server: tokio::task::JoinHandle<()>,
    last_lines: Arc<Mutex<VecDeque<String>>>,
    exited: Arc<Notify>,
    alive: Arc<Mutex<bool>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Where a function's binaries are and what every instance gets besides the template's
/// environment.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The directory holding the binaries (`target/debug`, …).
    pub bin_dir: PathBuf,
    /// Region.
    pub region: String,
    /// Account id.
    pub account_id: String,
    /// Endpoint and credential variables passed through (`AWS_ENDPOINT_URL*`, `AWS_ACCESS_KEY_ID`, …).
    pub passthrough: BTreeMap<String, String>,
}

/// A function's instances.
pub struct Function {
    /// Its spec from the template.
    pub spec: FunctionSpec,
    launch: Launch,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Arc<Instance>>>,
    running: Mutex<Vec<Arc<Instance>>>,
    stats: Mutex<Stats>,
    log: LogSink,
    start_failures: Mutex<(u32, Option<Instant>)>,
}

impl Function {
    /// The account the function runs in (its ARN's).
    pub fn account_id(&self) -> &str {
        &self.launch.account_id
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn trace_id() -> String {
    let secs = now_ms() / 1000;
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| format!("{:x}", fastrand::u8(0..16)))
            .collect()
    };
    format!("Root=1-{secs:08x}-{};Parent={};Sampled=1", hex(24), hex(16))
}

impl Function {
    /// A function of `spec`, at most `max_instances` at once.
    pub fn new(spec: FunctionSpec, launch: Launch, max_instances: usize, log: LogSink) -> Self {
        Function {
            spec,
            launch,
            permits: Arc::new(Semaphore::new(max_instances.max(1))),
            idle: Mutex::default(),
            running: Mutex::default(),
            stats: Mutex::default(),
            log,
            start_failures: Mutex::new((0, None)),
        }
    }

    /// The function's ARN.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.launch.region, self.launch.account_id, self.spec.name
        )
    }

    /// What it did so far.
    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Process ids of its running instances.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = Vec::new();
        for list in [&self.idle, &self.running] {
            if let Ok(list) = list.lock() {
                pids.extend(list.iter().filter(|i| i.is_alive()).map(|i| i.pid));
            }
        }
        pids
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Kills every instance (`SIGKILL`), busy or idle, as a crash would; returns how many.
    pub async fn kill_all(&self) -> usize {
        let all: Vec<Arc<Instance>> = {
            let mut idle = self
                .idle
                .lock()
                .map(|mut i| std::mem::take(&mut *i))
                .unwrap_or_default();
            if let Ok(running) = self.running.lock() {
                idle.extend(running.iter().cloned());
            }
            idle
        };
        for instance in &all {
            instance.kill().await;
        }
        all.len()
    }

    /// Invokes the function with `payload`; `records` counts toward its stats.
    pub async fn invoke(&self, payload: Bytes, records: usize) -> (Outcome, Duration) {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return (
                Outcome::InitError("the runner is shutting down".into()),
                Duration::ZERO,
            );
        };
        let started = Instant::now();
        let (instance, fresh) = match self.instance().await {
            Ok(instance) => instance,
            Err(why) => {
                self.record(
                    records,
                    &Outcome::InitError(why.clone()),
                    started.elapsed(),
                    "-",
                );
                return (Outcome::InitError(why), started.elapsed());
            }
        };
        if let Ok(mut running) = self.running.lock() {
            running.push(instance.clone());
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = self.spec.timeout;
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut results) = instance.channel.results.lock() {
            results.insert(request_id.clone(), sender);
        }
        if let Ok(mut queue) = instance.channel.queue.lock() {
            queue.push_back(Pending {
                request_id: request_id.clone(),
                payload,
                deadline_ms: now_ms() + timeout.as_millis() as u64,
                trace_id: trace_id(),
            });
        }
        instance.channel.available.notify_one();
        let handed = Instant::now();
        let outcome = tokio::select! {
            result = receiver => result.unwrap_or_else(|_| Outcome::Crashed("the Runtime API closed".into())),
            () = tokio::time::sleep(timeout) => {
                instance.kill().await;
                Outcome::Timeout(timeout)
            }
            () = instance.exited.notified() => {
                Outcome::Crashed(format!("the process exited; its last lines:\n{}", instance.last_lines()))
            }
        };
        let invocation_time = handed.elapsed();
        if let (Some(rss), Ok(mut stats)) = (instance.peak_rss_kib(), self.stats.lock()) {
            stats.max_rss_kib = stats.max_rss_kib.max(rss);
            if fresh && outcome.is_response() {
                stats.first_invocations.push(invocation_time);
            }
        }
        if let Ok(mut running) = self.running.lock() {
            running.retain(|i| !Arc::ptr_eq(i, &instance));
        }
        if instance.is_alive()
            && !matches!(outcome, Outcome::Timeout(_))
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(instance);
        }
        let elapsed = started.elapsed();
        self.record(records, &outcome, elapsed, &request_id);
        (outcome, elapsed)
    }

    fn record(&self, records: usize, outcome: &Outcome, elapsed: Duration, request_id: &str) {
        if let Ok(mut stats) = self.stats.lock() {
            stats.invocations += 1;
            stats.records += records;
            if !outcome.is_response() {
                stats.failed_invocations += 1;
                stats.failed_records += records;
            }
            stats.durations.push(elapsed);
        }
        self.log.invocation(
            &self.spec.logical_id,
            request_id,
            records,
            &outcome.summary(),
            elapsed,
        );
    }

    /// Counts records the function itself reported failed (partial batch responses).
    pub fn count_failed_records(&self, failed: usize) {
        if let Ok(mut stats) = self.stats.lock() {
            stats.failed_records += failed;
        }
    }

    /// An idle live instance, or a new one (`true`: new, this is its first invocation).
    async fn instance(&self) -> Result<(Arc<Instance>, bool), String> {
        loop {
            let candidate = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match candidate {
                Some(instance) if instance.is_alive() => return Ok((instance, false)),
                Some(_) => continue,
                None => break,
            }
        }
        // After failed starts, wait: 1 s, 2 s, 4 s … at most 30 s.
        let wait = self.start_failures.lock().ok().and_then(|f| {
            let (failures, last) = *f;
            let last = last?;
            let backoff = Duration::from_secs((1u64 << failures.min(5)).min(30));
            backoff.checked_sub(last.elapsed())
        });
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        match self.start().await {
            Ok(instance) => {
                if let Ok(mut f) = self.start_failures.lock() {
                    *f = (0, None);
                }
                if let Ok(mut stats) = self.stats.lock() {
                    stats.cold_starts += 1;
                    stats.init_durations.extend(instance.init_duration());
                }
                Ok((instance, true))
            }
            Err(why) => {
                if let Ok(mut f) = self.start_failures.lock() {
                    *f = (f.0 + 1, Some(Instant::now()));
                }
                Err(why)
            }
        }
    }

    /// The environment Lambda gives an instance, then the template's, then the endpoint and
    /// credential variables: nothing else from the runner's own environment.
    fn environment(&self, api: SocketAddr) -> BTreeMap<String, String> {
        let spec = &self.spec;
        let region = &self.launch.region;
        let mut env = BTreeMap::from([
            ("AWS_LAMBDA_RUNTIME_API".to_owned(), api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), spec.name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
                "$LATEST".to_owned(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
                spec.memory_mb.to_string(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
                spec.log_group.clone(),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME".to_owned(),
                format!(
                    "{}/[$LATEST]{}",
                    chrono::Utc::now().format("%Y/%m/%d"),
                    uuid::Uuid::new_v4().simple()
                ),
            ),
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE".to_owned(),
                "on-demand".to_owned(),
            ),
            (
                "AWS_EXECUTION_ENV".to_owned(),
                "AWS_Lambda_provided.al2023".to_owned(),
            ),
            ("AWS_REGION".to_owned(), region.clone()),
            ("AWS_DEFAULT_REGION".to_owned(), region.clone()),
            ("_HANDLER".to_owned(), "bootstrap".to_owned()),
            (
                "LAMBDA_TASK_ROOT".to_owned(),
                self.launch.bin_dir.display().to_string(),
            ),
            ("LAMBDA_RUNTIME_DIR".to_owned(), "/var/runtime".to_owned()),
            ("TZ".to_owned(), ":UTC".to_owned()),
            ("LANG".to_owned(), "en_US.UTF-8".to_owned()),
            (
                "PATH".to_owned(),
                "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned(),
            ),
        ]);
        if let Some(format) = &spec.log_format {
            env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format.clone());
        }
        if let Some(level) = &spec.log_level {
            env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level.clone());
        }
        env.extend(spec.environment.clone());
        env.extend(self.launch.passthrough.clone());
        env
    }

    async fn start(&self) -> Result<Arc<Instance>, String> {
        let binary = self.launch.bin_dir.join(&self.spec.binary);
        if !binary.is_file() {
            return Err(format!(
                "no binary {} (build it first: cargo build -p {})",
                binary.display(),
                self.spec.binary
            ));
        }
        let channel = Arc::new(Channel::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot open a Runtime API port: {e}"))?;
        let api = listener.local_addr().map_err(|e| e.to_string())?;
        let server = tokio::spawn(serve(listener, channel.clone(), self.arn()));
        let spawned = Instant::now();
        let mut child = tokio::process::Command::new(&binary)
            .env_clear()
            .envs(self.environment(api))
            .current_dir(&self.launch.bin_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id().unwrap_or(0);
        let last_lines = Arc::new(Mutex::new(VecDeque::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (log, name, last) = (
                self.log.clone(),
                self.spec.logical_id.clone(),
                last_lines.clone(),
            );
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut last) = last.lock() {
                        last.push_back(line.clone());
                        while last.len() > 20 {
                            last.pop_front();
                        }
                    }
                    log.line(&name, &line);
                }
            });
        }
        let instance = Arc::new(Instance {
            started: spawned,
            channel: channel.clone(),
            child: tokio::sync::Mutex::new(child),
            pid,
            server,
            last_lines,
            exited: Arc::new(Notify::new()),
            alive: Arc::new(Mutex::new(true)),
        });
        // Watch the process: a crash wakes whoever waits on it.
        {
            let watched = instance.clone();
            tokio::spawn(async move {
                loop {
                    let status = watched.child.lock().await.try_wait();
                    match status {
                        Ok(Some(_)) | Err(_) => {
                            watched.mark_dead();
                            return;
                        }
                        Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                    if !watched.is_alive() {
                        return;
                    }
                }
            });
        }
        // Init: the instance is ready when it first asks for work (Lambda allows 10 s).
        let init_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if channel.asked_once.lock().map(|a| *a).unwrap_or(false) {
                break;
            }
            if !instance.is_alive() {
                let why = channel
                    .init_error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| "the process exited before asking for work".into());
                // Its last words may still be on their way through the pipe.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(format!("{why}; its last lines:\n{}", instance.last_lines()));
            }
            if Instant::now() > init_deadline {
                instance.kill().await;
                return Err(format!(
                    "did not ask for work within 10 s; its last lines:\n{}",
                    instance.last_lines()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(instance)
    }
}

impl Instance {
    /// From starting the process to its first request for work.
    fn init_duration(&self) -> Option<Duration> {
        let first = self.channel.first_asked.lock().ok().and_then(|f| *f)?;
        Some(first.saturating_duration_since(self.started))
    }

    /// The largest resident set the process has had so far, in KiB (Linux only).
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn is_alive(&self) -> bool {
        self.alive.lock().map(|a| *a).unwrap_or(false)
    }

    fn mark_dead(&self) {
        if let Ok(mut alive) = self.alive.lock() {
            *alive = false;
        }
        self.exited.notify_waiters();
        self.exited.notify_one();
    }

    async fn kill(&self) {
        let _ = self.child.lock().await.kill().await;
        self.mark_dead();
    }

    fn last_lines(&self) -> String {
        self.last_lines
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// Serves one instance's Runtime API until the instance goes.
async fn serve(listener: tokio::net::TcpListener, channel: Arc<Channel>, arn: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (channel, arn) = (channel.clone(), arn.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (channel, arn) = (channel.clone(), arn.clone());
                async move { Ok::<_, Infallible>(route(request, &channel, &arn).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(request: Request<Incoming>, channel: &Channel, arn: &str) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            if let Ok(mut asked) = channel.asked_once.lock() {
                *asked = true;
            }
            if let Ok(mut first) = channel.first_asked.lock() {
                first.get_or_insert_with(Instant::now);
            }
            loop {
                let next = channel.queue.lock().ok().and_then(|mut q| q.pop_front());
                if let Some(pending) = next {
                    let mut response = reply(StatusCode::OK, pending.payload);
                    let headers = response.headers_mut();
                    for (name, value) in [
                        ("lambda-runtime-aws-request-id", pending.request_id),
                        (
                            "lambda-runtime-deadline-ms",
                            pending.deadline_ms.to_string(),
                        ),
                        ("lambda-runtime-invoked-function-arn", arn.to_owned()),
                        ("lambda-runtime-trace-id", pending.trace_id),
                        ("content-type", "application/json".to_owned()),
                    ] {
                        if let Ok(value) = http::HeaderValue::from_str(&value) {
                            headers.insert(name, value);
                        }
                    }
                    return response;
                }
                channel.available.notified().await;
            }
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            complete(channel, id, Outcome::Response(body))
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let text = |key: &str| {
                error
                    .get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            complete(
                channel,
                id,
                Outcome::Error {
                    error_type: text("errorType"),
                    message: text("errorMessage"),
                },
            )
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Ok(mut init) = channel.init_error.lock() {
                *init = Some(format!(
                    "init error {}: {}",
                    error
                        .get("errorType")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default(),
                    error
                        .get("errorMessage")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                ));
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"no such Runtime API path"}"#,
        ),
    }
}

fn complete(channel: &Channel, id: &str, outcome: Outcome) -> Response<Body> {
    let sender = channel.results.lock().ok().and_then(|mut r| r.remove(id));
    match sender {
        Some(sender) => {
            let _ = sender.send(outcome);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        None => reply(
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"unknown or finished request id"}"#,
        ),
    }
}
