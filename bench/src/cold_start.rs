//! A function binary's cold start as Lambda counts its init: from starting the process to its
//! first `GET /runtime/invocation/next` on the Runtime API, with every SDK client built.
//!
//! The Runtime API here is a listener that notes when the request arrives and never answers
//! it; the process is then killed. Peak resident memory is Linux's `VmHWM` read at that
//! moment. Binaries measured together are started in turns, one start each a round.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::callgrind;

/// What every function reads at start, deployed or here: the Lambda variables, and each
/// function's own (tables, topic, queues) set to names nothing is asked about, since init makes
/// no request. The endpoint is a closed port, so a request init did make would show as an error.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("POWERTOOLS_METRICS_NAMESPACE", "orderflow-bench"),
    ("POWERTOOLS_SERVICE_NAME", "bench"),
    ("IDEMPOTENCY_TABLE", "bench-idempotency"),
    (
        "DEAD_LETTER_QUEUE_URL",
        "http://127.0.0.1:9/000000000000/bench-dlq",
    ),
    (
        "EVENTS_TOPIC_ARN",
        "arn:aws:sns:us-east-1:000000000000:bench-events",
    ),
    (
        "FAILURE_QUEUE_URL",
        "http://127.0.0.1:9/000000000000/bench-failures",
    ),
    ("ORDERS_TABLE", "bench-orders"),
    ("PAYMENTS_TABLE", "bench-payments"),
    ("INVENTORY_TABLE", "bench-inventory"),
    ("NOTIFICATIONS_TABLE", "bench-notifications"),
    ("ANALYTICS_TABLE", "bench-analytics"),
];

/// One binary's cold starts.
#[derive(Clone, Debug)]
pub(crate) struct ColdStarts {
    /// Each run's init, sorted.
    pub(crate) init: Vec<Duration>,
    /// The largest peak resident set of the runs, in KiB.
    pub(crate) peak_rss_kib: u64,
    /// Instructions from exec to the first Runtime API request, counted by callgrind (`None`:
    /// not counted; the report says why).
    pub(crate) instructions: Option<u64>,
}

impl ColdStarts {
    /// The median init.
    pub(crate) fn median(&self) -> Duration {
        self.init[self.init.len() / 2]
    }

    /// The fastest init.
    pub(crate) fn min(&self) -> Duration {
        self.init[0]
    }

    /// The 90th percentile.
    pub(crate) fn p90(&self) -> Duration {
        self.init[(self.init.len() * 9 / 10).min(self.init.len() - 1)]
    }
}

/// Starts processes and times their inits against one Runtime API listener.
struct Starter {
    /// The listener's address, the processes' `AWS_LAMBDA_RUNTIME_API`.
    api: std::net::SocketAddr,
    /// When each `GET /runtime/invocation/next` arrived.
    next: mpsc::Receiver<Instant>,
}

impl Starter {
    /// Opens the Runtime API listener, which notes each `next` request on its own thread.
    fn new() -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("cannot open a Runtime API port")?;
        let api = listener.local_addr()?;
        let (asked, next) = mpsc::channel::<Instant>();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let asked = asked.clone();
                thread::spawn(move || note_next(stream, &asked));
            }
        });
        Ok(Starter { api, next })
    }

    /// Starts `binary` once: its init, and its peak resident set in KiB (0 if unread).
    fn start(&self, binary: &Path) -> anyhow::Result<(Duration, u64)> {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .envs(ENVIRONMENT.iter().copied())
            .env("AWS_LAMBDA_RUNTIME_API", self.api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name(binary))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let until = started + Duration::from_secs(10);
        // Only a request made after this start counts: a late one from a process killed
        // earlier is skipped rather than read as a 0 ms init.
        let asked_at = loop {
            match self
                .next
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(at) if at < started => continue,
                other => break other,
            }
        };
        let rss = peak_rss(child.id());
        let _ = child.kill();
        let output = child.wait_with_output()?;
        let Ok(asked_at) = asked_at else {
            bail!(
                "{} did not ask for work within 10 s: {}",
                binary.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        };
        Ok((
            asked_at.saturating_duration_since(started),
            rss.unwrap_or(0),
        ))
    }
}

/// Starts each of `binaries` `runs` times and measures each init, in rounds: every binary once
/// a round, so a noisy spell of the machine falls on all of them alike rather than on whichever
/// was being measured then. A binary that fails to start is left out of later rounds; its entry
/// says why.
pub(crate) fn measure_interleaved(
    binaries: &[&Path],
    runs: usize,
) -> anyhow::Result<Vec<anyhow::Result<ColdStarts>>> {
    let starter = Starter::new()?;
    let mut results: Vec<anyhow::Result<ColdStarts>> = binaries
        .iter()
        .map(|_| {
            Ok(ColdStarts {
                init: Vec::with_capacity(runs),
                peak_rss_kib: 0,
                instructions: None,
            })
        })
        .collect();
    for _ in 0..runs {
        for (binary, result) in binaries.iter().zip(results.iter_mut()) {
            let Ok(cold) = result else { continue };
            match starter.start(binary) {
                Ok((init, rss)) => {
                    cold.init.push(init);
                    cold.peak_rss_kib = cold.peak_rss_kib.max(rss);
                }
                Err(err) => *result = Err(err),
            }
        }
    }
    for cold in results.iter_mut().flatten() {
        cold.init.sort();
    }
    Ok(results)
}

fn function_name(binary: &Path) -> String {
    binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads requests from one connection; notes the time of each `invocation/next`, then holds the
/// connection open (the function waits for work that never comes).
fn note_next(stream: TcpStream, asked: &mpsc::Sender<Instant>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if line.starts_with("GET ") && line.contains("/runtime/invocation/next") {
            let _ = asked.send(Instant::now());
        }
        line.clear();
    }
}

/// The process's peak resident set so far, in KiB (`VmHWM`).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Instructions `binary` runs from exec to its first Runtime API request, counted by callgrind.
/// Unlike a time, the count is the same on a busy host as on an idle one, so a change to init
/// shows whatever the host's noise.
///
/// The Runtime API is a closed port here: the process ends with an error at its first
/// request, and the failed connection and the exit are counted too. Checked once by hand on
/// `payment`: 4,964,614 instructions so, 4,965,073 with a listener holding `/next` open and
/// `SIGTERM` sent when it arrived; the difference is noise.
pub(crate) fn count_instructions(binary: &Path) -> anyhow::Result<u64> {
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut command = callgrind::command(binary)?;
    command
        .env_clear()
        .envs(ENVIRONMENT.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", closed.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function_name(binary));
    callgrind::count(
        command,
        &binary.display().to_string(),
        callgrind::Ending::AnyExit,
    )
}
