//! End to end through the real binaries: the template provisioned into the emulator
//! (`AWS_ENDPOINT_URL`), every function's release binary run by `orderflow-local`, and
//! `OrderPlaced` events published to the topic as another system would. Measured in one run:
//! the emulator's own ceiling (SQS round trips, [`ceiling`]); a burst of orders for
//! throughput; a paced run for latency from publish to each order's last effect
//! ([`latency`]); the requests every order cost, counted by the runner's proxy; the
//! functions' invocations and durations; and where the CPU went ([`cpu`]).

pub(crate) mod ceiling;
pub(crate) mod cpu;
pub(crate) mod latency;
pub(crate) mod report;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use orderflow::Event;
use orderflow::event::{EventPayload, examples};
use orderflow::publish::Publisher;
use orderflow_local::proxy::{Key, Usage};
use orderflow_tests::stack::Deployed;
use rust_decimal::Decimal;

pub(crate) use ceiling::RoundTrips;

/// SKUs the orders spread over, so that inventory's transactions rarely meet on one item.
const SKUS: usize = 40;

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Orders in the burst.
    pub(crate) orders: usize,
    /// Orders in the paced run.
    pub(crate) paced_orders: usize,
    /// The paced run's rate, as a share of the burst's throughput.
    pub(crate) paced_share: f64,
    /// Publishers at once.
    pub(crate) publishers: usize,
    /// How long each ceiling measurement runs.
    pub(crate) ceiling_for: Duration,
}

/// One phase: orders published, then waited for until every order's last effect.
#[derive(Clone, Debug)]
pub(crate) struct Phase {
    /// Orders published.
    pub(crate) orders: usize,
    /// The rate they were offered at (`None`: all at once).
    pub(crate) offered_per_second: Option<f64>,
    /// From the first publish to the last order's last effect.
    pub(crate) makespan: Duration,
    /// Each order's latency, publish → last effect, sorted.
    pub(crate) latencies: Vec<Duration>,
    /// Orders that ended `CONFIRMED`.
    pub(crate) confirmed: usize,
    /// Requests by caller, service and operation.
    pub(crate) requests: BTreeMap<Key, Usage>,
    /// What each function did, by logical id.
    pub(crate) functions: BTreeMap<String, FunctionRun>,
    /// CPU time of the emulator, the runner (this process) and the function instances.
    pub(crate) cpu: CpuSplit,
    /// Bytes the functions logged.
    pub(crate) log_bytes: u64,
    /// The emulator's own process's CPU use, in cores, from the first publish until 95 % of
    /// the orders had their last effect: the steady part of the run, before the tail where the
    /// last orders' final hops leave it idle between batching windows.
    pub(crate) emulator_root_steady_cores: Option<f64>,
}

impl Phase {
    /// Orders a second, over the makespan.
    pub(crate) fn orders_per_second(&self) -> f64 {
        self.orders as f64 / self.makespan.as_secs_f64()
    }

    /// A latency percentile.
    pub(crate) fn latency(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

/// A function's invocations in one phase.
#[derive(Clone, Debug, Default)]
pub(crate) struct FunctionRun {
    /// Invocations.
    pub(crate) invocations: usize,
    /// Records (messages, stream records, HTTP requests).
    pub(crate) records: usize,
    /// Invocations that did not end in a response.
    pub(crate) failed_invocations: usize,
    /// Instances started.
    pub(crate) cold_starts: usize,
    /// Each invocation's duration, sorted.
    pub(crate) durations: Vec<Duration>,
    /// Each instance's first invocation (init not included), sorted.
    pub(crate) first_invocations: Vec<Duration>,
    /// Each instance's init, sorted.
    pub(crate) inits: Vec<Duration>,
    /// The largest resident set, KiB.
    pub(crate) max_rss_kib: u64,
}

impl FunctionRun {
    /// Milliseconds Lambda would bill: every invocation rounded up to the next millisecond.
    pub(crate) fn billed_ms(&self) -> f64 {
        self.durations
            .iter()
            .map(|d| (d.as_secs_f64() * 1e3).ceil())
            .sum()
    }
}

/// CPU time in one phase.
#[derive(Clone, Debug, Default)]
pub(crate) struct CpuSplit {
    /// The emulator's process tree (`None`: its process id is unknown).
    pub(crate) emulator: Option<Duration>,
    /// The emulator's own process: its request handling, one Python interpreter whose lock
    /// lets it use one core at most (the tree adds DynamoDB Local's JVM under LocalStack).
    pub(crate) emulator_root: Option<Duration>,
    /// This process: the runner (event sources, Runtime APIs, proxy) and the publishers.
    pub(crate) runner: Duration,
    /// Every function instance.
    pub(crate) functions: Duration,
    /// Wall time.
    pub(crate) wall: Duration,
}

/// Everything measured end to end.
#[derive(Clone, Debug)]
pub(crate) struct EndToEnd {
    /// The endpoint.
    pub(crate) endpoint: String,
    /// SQS round trips from one client.
    pub(crate) ceiling_one: RoundTrips,
    /// SQS round trips from several clients at once.
    pub(crate) ceiling_many: RoundTrips,
    /// A few orders one by one, on an idle system: each function's first instance starts.
    pub(crate) warmup: Phase,
    /// All orders at once.
    pub(crate) burst: Phase,
    /// Orders at a steady rate below the burst's throughput.
    pub(crate) paced: Phase,
}

/// A sorted list's percentile.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// The emulator's process id, which `scripts/with-moto.sh` and `scripts/with-localstack.sh`
/// export.
fn emulator_pid() -> Option<u32> {
    std::env::var("ORDERFLOW_EMULATOR_PID")
        .ok()
        .and_then(|p| p.parse().ok())
}

/// An `OrderPlaced` as another shop publishes it: one SKU of [`SKUS`], a paying customer.
fn order(n: usize, run: &str) -> Event {
    let mut event = examples::order_placed();
    let order_id = format!("{run}-{n:05}");
    event.event_id = uuid::Uuid::new_v4();
    event.correlation_id = format!("corr-{order_id}");
    event.source = "bench".into();
    event.aggregate_id = order_id.clone();
    if let EventPayload::OrderPlaced(placed) = &mut event.payload {
        placed.order_id = order_id;
        placed.customer_id = format!("cust-{n}");
        placed.customer_email = Some(format!("customer-{n}@example.com"));
        placed.items.truncate(1);
        placed.items[0].sku = format!("SKU-BENCH-{:02}", n % SKUS);
        placed.items[0].quantity = 1;
        placed.total = placed.items[0].unit_price * Decimal::from(1);
    }
    event
}

/// Runs the ceiling, the burst and the paced run against the emulator `AWS_ENDPOINT_URL` names.
pub(crate) async fn run(options: &Options) -> anyhow::Result<EndToEnd> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL is not set (make bench starts moto and sets it)")?;
    let sdk = orderflow::aws::sdk_config().await;
    let pid = emulator_pid();
    eprintln!("end to end: the emulator's ceiling (SQS round trips)");
    let ceiling_one = ceiling::measure(&sdk, pid, 1, options.ceiling_for).await?;
    let ceiling_many = ceiling::measure(&sdk, pid, 8, options.ceiling_for).await?;

    eprintln!("end to end: provisioning the template and starting the release binaries");
    let deployed = Deployed::start("bench", &[], false).await;
    for sku in 0..SKUS {
        deployed
            .seed_stock(&format!("SKU-BENCH-{sku:02}"), 1_000_000)
            .await;
    }
    let publisher = Arc::new(Publisher::new(
        deployed.aws.sns.clone(),
        deployed.output("EventsTopicArn"),
    ));
    // Warm-up: a few orders one a second through an idle system: every function's first
    // instance starts, takes its first invocation, then warm ones (cold starts still happen in
    // the burst when concurrency grows, and are counted there).
    // Twice: the first wave also warms the emulator (DynamoDB Local's first request to a new
    // table is slow); its instances are then killed, so the second wave's first invocations
    // are cold starts of ours against a warm emulator.
    eprintln!("end to end: warm-up, 2 x 5 orders one a second");
    phase(&deployed, &publisher, options, "warmup", 5, Some(1.0)).await?;
    for function in deployed.runner.functions().values() {
        function.kill_all().await;
    }
    let warmup = phase(&deployed, &publisher, options, "warmup", 5, Some(1.0)).await?;
    eprintln!(
        "end to end: a burst of {} orders through the real binaries",
        options.orders
    );
    let burst = phase(
        &deployed,
        &publisher,
        options,
        "burst",
        options.orders,
        None,
    )
    .await?;
    let rate = burst.orders_per_second() * options.paced_share;
    eprintln!(
        "end to end: {} orders at {rate:.1} a second",
        options.paced_orders
    );
    let paced = phase(
        &deployed,
        &publisher,
        options,
        "paced",
        options.paced_orders,
        Some(rate),
    )
    .await?;
    deployed.stop().await;
    Ok(EndToEnd {
        endpoint,
        ceiling_one,
        ceiling_many,
        warmup,
        burst,
        paced,
    })
}

/// Publishes `orders` orders (all at once, or at `rate` a second), waits until nothing moves,
/// and measures.
async fn phase(
    deployed: &Deployed,
    publisher: &Arc<Publisher>,
    options: &Options,
    name: &str,
    orders: usize,
    rate: Option<f64>,
) -> anyhow::Result<Phase> {
    let run = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let events: Vec<Event> = (0..orders).map(|n| order(n, &run)).collect();
    let proxy = deployed
        .runner
        .proxy()
        .context("the runner has no proxy: the endpoint must be an emulator's (http://)")?
        .clone();
    proxy.tally().reset();
    let stats_before = deployed.runner.stats();
    let cpu_before = cpu_now(deployed);
    let logs_before = log_bytes(&deployed.log_dir);
    let started = Instant::now();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn(sample_emulator(sampling.clone()));
    let published_at = publish(publisher, events, options.publishers, rate).await?;
    deployed
        .runner
        .settle(Duration::from_secs(1800), &|_| {})
        .await
        .map_err(anyhow::Error::msg)?;
    let settled = started.elapsed();
    let cpu_after = cpu_now(deployed);
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let samples = sampler.await.unwrap_or_default();
    let requests = proxy.tally().snapshot();
    let logged = log_bytes(&deployed.log_dir).saturating_sub(logs_before);
    let functions = function_runs(&stats_before, &deployed.runner.stats());

    let ids: HashSet<String> = published_at.keys().cloned().collect();
    let effects = latency::last_effects(&deployed.log_dir, &ids);
    let first_publish = published_at
        .values()
        .min()
        .copied()
        .unwrap_or_else(Utc::now);
    let mut latencies = Vec::with_capacity(orders);
    let mut last = first_publish;
    for (order, at) in &published_at {
        let Some(effect) = effects.get(order) else {
            bail!("order {order} has no effect in any function's log");
        };
        latencies.push((effect.at - *at).to_std().unwrap_or_default());
        last = last.max(effect.at);
    }
    latencies.sort();
    let makespan = (last - first_publish).to_std().unwrap_or(settled);
    let mut ends: Vec<DateTime<Utc>> = effects.values().map(|e| e.at).collect();
    ends.sort();
    let steady_end = ends
        .get((ends.len() * 95 / 100).min(ends.len().saturating_sub(1)))
        .copied()
        .unwrap_or(last);
    let emulator_root_steady_cores = cores_between(&samples, first_publish, steady_end);
    let mut confirmed = 0;
    for order in &ids {
        let item = deployed
            .item(
                "OrdersTableName",
                &[("pk", &format!("ORDER#{order}")), ("sk", "ORDER")],
            )
            .await;
        if item
            .and_then(|i| i.get("status").cloned())
            .is_some_and(|s| s == "CONFIRMED")
        {
            confirmed += 1;
        }
    }
    Ok(Phase {
        orders,
        offered_per_second: rate,
        makespan,
        latencies,
        confirmed,
        requests,
        functions,
        cpu: CpuSplit {
            emulator: cpu_after
                .emulator
                .zip(cpu_before.emulator)
                .map(|(a, b)| a.saturating_sub(b)),
            emulator_root: cpu_after
                .emulator_root
                .zip(cpu_before.emulator_root)
                .map(|(a, b)| a.saturating_sub(b)),
            runner: cpu_after.runner.saturating_sub(cpu_before.runner),
            functions: cpu_after.functions.saturating_sub(cpu_before.functions),
            wall: settled,
        },
        log_bytes: logged,
        emulator_root_steady_cores,
    })
}

/// The emulator's own process's CPU time, sampled twice a second until told to stop.
async fn sample_emulator(
    going: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(DateTime<Utc>, Duration)> {
    let mut samples = Vec::new();
    let Some(pid) = emulator_pid() else {
        return samples;
    };
    while going.load(std::sync::atomic::Ordering::SeqCst) {
        if let Some(cpu) = cpu::of(pid) {
            samples.push((Utc::now(), cpu.own));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    samples
}

/// Cores used between `from` and `to`, from the samples nearest inside them.
fn cores_between(
    samples: &[(DateTime<Utc>, Duration)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<f64> {
    let first = samples.iter().find(|(at, _)| *at >= from)?;
    let last = samples.iter().rev().find(|(at, _)| *at <= to)?;
    let wall = (last.0 - first.0).to_std().ok()?.as_secs_f64();
    (wall > 1.0).then(|| last.1.saturating_sub(first.1).as_secs_f64() / wall)
}

/// Bytes of every function's log file under `dir`.
fn log_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with("Function.log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Publishes every event with `publishers` at once (or paced at `rate` a second); when each
/// order's publish began, by order id.
async fn publish(
    publisher: &Arc<Publisher>,
    events: Vec<Event>,
    publishers: usize,
    rate: Option<f64>,
) -> anyhow::Result<BTreeMap<String, DateTime<Utc>>> {
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(publishers.max(1)));
    let mut tasks = Vec::with_capacity(events.len());
    for (n, event) in events.into_iter().enumerate() {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = limit.clone().acquire_owned().await?;
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let at = Utc::now();
            let result = publisher.publish(&event).await;
            drop(permit);
            result.map(|_| (event.aggregate_id.clone(), at))
        }));
    }
    let mut published = BTreeMap::new();
    for task in tasks {
        let (order, at) = task
            .await
            .context("a publisher stopped")?
            .map_err(|e| anyhow::anyhow!("publishing an order failed: {e}"))?;
        published.insert(order, at);
    }
    Ok(published)
}

/// CPU time so far of the emulator's tree, this process and the function instances.
fn cpu_now(deployed: &Deployed) -> CpuSplit {
    let runner = cpu::of(std::process::id())
        .map(|t| t.own)
        .unwrap_or_default();
    let functions = deployed
        .runner
        .pids()
        .into_iter()
        .filter_map(cpu::of)
        .map(|t| t.own)
        .sum();
    CpuSplit {
        emulator: emulator_pid().map(cpu::of_tree),
        emulator_root: emulator_pid().and_then(cpu::of).map(|t| t.own),
        runner,
        functions,
        wall: Duration::ZERO,
    }
}

/// What each function did between two snapshots of the runner's stats.
fn function_runs(
    before: &BTreeMap<String, orderflow_local::Stats>,
    after: &BTreeMap<String, orderflow_local::Stats>,
) -> BTreeMap<String, FunctionRun> {
    after
        .iter()
        .map(|(id, now)| {
            let was = before.get(id).cloned().unwrap_or_default();
            let since = |list: &[Duration], from: usize| -> Vec<Duration> {
                let mut tail = list.get(from..).unwrap_or_default().to_vec();
                tail.sort();
                tail
            };
            (
                id.clone(),
                FunctionRun {
                    invocations: now.invocations - was.invocations,
                    records: now.records - was.records,
                    failed_invocations: now.failed_invocations - was.failed_invocations,
                    cold_starts: now.cold_starts - was.cold_starts,
                    durations: since(&now.durations, was.durations.len()),
                    first_invocations: since(&now.first_invocations, was.first_invocations.len()),
                    inits: since(&now.init_durations, was.init_durations.len()),
                    max_rss_kib: now.max_rss_kib,
                },
            )
        })
        .collect()
}
