//! The end-to-end part of `bench/REPORT.md`: the emulator's ceiling, throughput and latency
//! through the real binaries, where the CPU went, first invocations, requests per order and
//! the cost model.

use std::fmt::Write;
use std::time::Duration;

use orderflow_local::proxy::{Service, Usage};

use super::{EndToEnd, Phase, RoundTrips, percentile};
use crate::cost::{self, PRICES};

/// The share of what the emulator allows that the runner must reach (issue 14).
pub(crate) const RUNNER_SHARE_TARGET: f64 = 0.9;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ceiling_row(out: &mut String, r: &RoundTrips) -> std::fmt::Result {
    let cores = match (r.emulator_cores(), r.emulator_root_cores()) {
        (Some(all), Some(root)) => format!("{all:.2} cores ({root:.2} its own process)"),
        _ => "—".into(),
    };
    let per_request = r
        .emulator_cpu_per_request()
        .map_or("—".into(), |d| format!("{:.0} µs", d.as_secs_f64() * 1e6));
    writeln!(
        out,
        "| {} | {:.0} | {:.0} | {cores} | {per_request} |",
        r.clients,
        r.per_second(),
        r.requests_per_second()
    )
}

fn phase_row(out: &mut String, name: &str, p: &Phase) -> std::fmt::Result {
    writeln!(
        out,
        "| {name} | {} | {} | {:.1} | {:.0} ms | {:.0} ms | {} of {} |",
        p.orders,
        p.offered_per_second
            .map_or("all at once".into(), |r| format!("{r:.1}/s")),
        p.orders_per_second(),
        ms(p.latency(0.5)),
        ms(p.latency(0.99)),
        p.confirmed,
        p.orders
    )
}

/// How busy the burst kept the emulator while orders flowed (until 95 % had their last
/// effect), as a share of the most it did in the ceiling run: its own process handles every
/// request in one interpreter (one core at most), so when it is as busy as it gets, the
/// emulator is what limits the run, not the runner.
pub(crate) fn emulator_busy_share(e2e: &EndToEnd) -> Option<f64> {
    let most = e2e.ceiling_many.emulator_root_cores()?;
    let burst = e2e.burst.emulator_root_steady_cores?;
    (most > 0.0).then(|| burst / most)
}

/// Appends the end-to-end sections.
pub(crate) fn render(
    out: &mut String,
    e2e: &EndToEnd,
    powertools_per_record_extra: Option<Duration>,
    powertools_cold_start_ms: Option<f64>,
) -> std::fmt::Result {
    writeln!(out, "\n## End to end, through the real binaries\n")?;
    writeln!(
        out,
        "`infra/template.yaml` provisioned into the emulator at {} by `orderflow-local`, which runs \
         every function's release binary behind its Runtime API with the template's event sources \
         (batch 10, window 1 s, 5 pollers a consumer; the relay's stream batch 100). Orders are \
         `OrderPlaced` events published to the topic as another system would (one `Publish` each, \
         8 at a time), each for one of 40 SKUs in stock; each ends `CONFIRMED` after payment, \
         inventory, orders, the relay, notification and analytics have handled it. Latency = its \
         publish → the last `record done` any function logged about it.\n",
        e2e.endpoint
    )?;
    writeln!(
        out,
        "**The emulator's ceiling** — SQS `SendMessage` → `ReceiveMessage` → `DeleteMessage`, \
         nothing of ours in between:\n"
    )?;
    writeln!(
        out,
        "| clients | round trips/s | requests/s | emulator CPU | emulator CPU a request |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    ceiling_row(out, &e2e.ceiling_one)?;
    ceiling_row(out, &e2e.ceiling_many)?;

    writeln!(out, "\n**Orders through the runner:**\n")?;
    writeln!(
        out,
        "| run | orders | offered | orders/s | p50 latency | p99 latency | confirmed |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    phase_row(out, "burst", &e2e.burst)?;
    phase_row(out, "paced", &e2e.paced)?;

    let burst = &e2e.burst;
    let wall = burst.cpu.wall.as_secs_f64();
    writeln!(
        out,
        "\n**Where the burst's time went** (CPU seconds, and cores over its {wall:.1} s):\n"
    )?;
    writeln!(out, "| process | CPU | cores | a order |")?;
    writeln!(out, "|---|---|---|---|")?;
    let per_order = |d: Duration| d.as_secs_f64() * 1e3 / burst.orders.max(1) as f64;
    if let Some(emulator) = burst.cpu.emulator {
        writeln!(
            out,
            "| the emulator, all its processes | {:.1} s | {:.2} | {:.2} ms |",
            emulator.as_secs_f64(),
            emulator.as_secs_f64() / wall,
            per_order(emulator)
        )?;
    }
    if let Some(root) = burst.cpu.emulator_root {
        writeln!(
            out,
            "| the emulator's own process (requests) | {:.1} s | {:.2} | {:.2} ms |",
            root.as_secs_f64(),
            root.as_secs_f64() / wall,
            per_order(root)
        )?;
    }
    writeln!(
        out,
        "| the runner (event sources, Runtime APIs, proxy) and the publishers | {:.1} s | {:.2} | {:.2} ms |",
        burst.cpu.runner.as_secs_f64(),
        burst.cpu.runner.as_secs_f64() / wall,
        per_order(burst.cpu.runner)
    )?;
    writeln!(
        out,
        "| the function instances | {:.1} s | {:.2} | {:.2} ms |",
        burst.cpu.functions.as_secs_f64(),
        burst.cpu.functions.as_secs_f64() / wall,
        per_order(burst.cpu.functions)
    )?;
    match emulator_busy_share(e2e) {
        Some(share) => {
            writeln!(
                out,
                "\nWhile the orders flowed (from the first publish until 95 % had their last \
                 effect; the tail after it waits on batching windows, not on anyone), the \
                 emulator's own process, which handles every request, was {:.1} % as busy as the \
                 most it gets ({:.2} cores, 8 clients of SQS round trips): the runner reached \
                 **{:.1} % of what the emulator allows** for this request pattern, \
                 {:.1} orders/s of about {:.1} (target ≥ {:.0} %: {}).",
                tenths(share * 100.0),
                e2e.ceiling_many.emulator_root_cores().unwrap_or(0.0),
                tenths(share.min(1.0) * 100.0),
                burst.orders_per_second(),
                burst.orders_per_second() / share.max(f64::EPSILON),
                RUNNER_SHARE_TARGET * 100.0,
                if share >= RUNNER_SHARE_TARGET {
                    "met"
                } else {
                    "**not met**: see the CPU split above"
                }
            )?;
        }
        None => writeln!(
            out,
            "\nThe emulator's process is unknown (ORDERFLOW_EMULATOR_PID unset), so what it allows \
             is not computed."
        )?,
    }

    writeln!(
        out,
        "\n**Cold starts and first invocations** (the warm-up: {} orders one a second on an idle \
         system; every function's first instance starts and takes its first invocation, the \
         later ones are warm):\n",
        e2e.warmup.orders
    )?;
    writeln!(
        out,
        "| function | init | first invocation | warm invocation p50 | instances started in the burst | failed invocations (all runs) | max memory |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (name, warmup) in &e2e.warmup.functions {
        let cell = |list: &[Duration]| {
            if list.is_empty() {
                "—".to_owned()
            } else {
                format!("{:.1} ms", ms(percentile(list, 0.5)))
            }
        };
        let later = |phase: &Phase| phase.functions.get(name).cloned().unwrap_or_default();
        let (burst, paced) = (later(&e2e.burst), later(&e2e.paced));
        writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {:.1} MiB |",
            cell(&warmup.inits),
            cell(&warmup.first_invocations),
            cell(&warmup.durations),
            burst.cold_starts,
            warmup.failed_invocations + burst.failed_invocations + paced.failed_invocations,
            warmup
                .max_rss_kib
                .max(burst.max_rss_kib)
                .max(paced.max_rss_kib) as f64
                / 1024.0
        )?;
    }
    writeln!(
        out,
        "\nA first invocation does what an instance leaves for later: the first connection to \
         the endpoint (plain HTTP here), the TLS configuration the HTTPS client builds on first \
         use from the roots read at init, and the first request's credential and endpoint \
         resolution."
    )?;

    render_requests(out, burst)?;
    render_cost(
        out,
        e2e,
        powertools_per_record_extra,
        powertools_cold_start_ms,
    )
}

/// Requests per order, by function.
fn render_requests(out: &mut String, burst: &Phase) -> std::fmt::Result {
    writeln!(
        out,
        "\n**Requests per order** (the burst, counted by the runner's proxy; a function's event \
         source is Lambda's poller working for it):\n"
    )?;
    writeln!(
        out,
        "| function | SNS publishes | SQS receives (empty) | SQS deletes | SQS visibility / sends | DynamoDB reads | DynamoDB writes | transactions (items) | stream reads |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    let orders = burst.orders.max(1) as f64;
    let by_function = orderflow_local::proxy::tally::group_by(&burst.requests, |k| {
        Some(
            k.caller
                .strip_suffix(" event source")
                .unwrap_or(&k.caller)
                .to_owned(),
        )
    });
    for function in by_function.keys() {
        let pick = |service: Service, filter: &dyn Fn(&str) -> bool| -> Usage {
            orderflow_local::proxy::tally::group_by(&burst.requests, |k| {
                (k.caller.strip_suffix(" event source").unwrap_or(&k.caller) == function
                    && k.service == service
                    && filter(&k.operation))
                .then_some(())
            })
            .remove(&())
            .unwrap_or_default()
        };
        let n = |u: &Usage| u.requests as f64 / orders;
        let publishes = pick(Service::Sns, &|o| o.starts_with("Publish"));
        let receives = pick(Service::Sqs, &|o| o == "ReceiveMessage");
        let deletes = pick(Service::Sqs, &|o| o.starts_with("DeleteMessage"));
        let other_sqs = pick(Service::Sqs, &|o| {
            o.starts_with("ChangeMessageVisibility") || o.starts_with("SendMessage")
        });
        let reads = pick(Service::DynamoDb, &|o| {
            matches!(o, "GetItem" | "Query" | "Scan" | "BatchGetItem")
        });
        let writes = pick(Service::DynamoDb, &|o| {
            matches!(
                o,
                "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem"
            )
        });
        let transactions = pick(Service::DynamoDb, &|o| o == "TransactWriteItems");
        let streams = pick(Service::DynamoDbStreams, &|o| o == "GetRecords");
        writeln!(
            out,
            "| {function} | {:.2} | {:.2} ({:.2}) | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2}) | {:.2} |",
            n(&publishes),
            n(&receives),
            receives.empty as f64 / orders,
            n(&deletes),
            n(&other_sqs),
            n(&reads),
            n(&writes),
            n(&transactions),
            transactions.entries as f64 / orders,
            n(&streams)
        )?;
    }
    Ok(())
}

/// The cost model.
fn render_cost(
    out: &mut String,
    e2e: &EndToEnd,
    powertools_per_record_extra: Option<Duration>,
    powertools_cold_start_ms: Option<f64>,
) -> std::fmt::Result {
    // The order's own publish (made by the bench, not through the proxy) counts too.
    let comparison = cost::compare(&e2e.paced, 1.0, powertools_per_record_extra);
    writeln!(out, "\n## Cost per million orders\n")?;
    writeln!(
        out,
        "From the paced run's counted requests and measured durations (a steady rate the emulator \
         keeps up with; receives that found nothing are left out, they follow idle time, not \
         orders), at 256 MB arm64, us-east-1, public prices (first tier, free tiers left out):\n"
    )?;
    writeln!(out, "| price | USD | unit | source | as of |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for price in &PRICES {
        let usd = if price.usd < 1e-6 {
            format!("{:.3} per million", price.usd * 1e6)
        } else {
            format!("{:.10}", price.usd)
        };
        let usd = if price.unit == "byte" {
            format!("{:.2} per GB", price.usd * 1e9)
        } else {
            usd
        };
        writeln!(
            out,
            "| {} | {usd} | {} | {} | {} |",
            price.what, price.unit, price.source, price.date
        )?;
    }
    let (ours, theirs) = (&comparison.orderflow, &comparison.powertools);
    writeln!(
        out,
        "\n| per order | orderflow (measured) | same flow, Powertools' idempotency (modelled) |"
    )?;
    writeln!(out, "|---|---|---|")?;
    let rows: [(&str, f64, f64); 8] = [
        ("Lambda invocations", ours.invocations, theirs.invocations),
        ("billed Lambda ms", ours.billed_ms, theirs.billed_ms),
        ("SQS requests", ours.sqs_requests, theirs.sqs_requests),
        ("SNS publishes", ours.sns_requests, theirs.sns_requests),
        (
            "DynamoDB requests",
            ours.dynamodb_requests,
            theirs.dynamodb_requests,
        ),
        ("DynamoDB write units", ours.write_units, theirs.write_units),
        ("DynamoDB read units", ours.read_units, theirs.read_units),
        ("log bytes", ours.log_bytes, theirs.log_bytes),
    ];
    for (what, a, b) in rows {
        writeln!(out, "| {what} | {a:.2} | {b:.2} |")?;
    }
    writeln!(
        out,
        "\n| per million orders | orderflow | Powertools' idempotency |"
    )?;
    writeln!(out, "|---|---|---|")?;
    for ((what, a), (_, b)) in ours
        .cost_per_million()
        .iter()
        .zip(theirs.cost_per_million().iter())
    {
        writeln!(out, "| {what} | ${a:.2} | ${b:.2} |")?;
    }
    writeln!(
        out,
        "| **total** | **${:.2}** | **${:.2}** |",
        ours.total(),
        theirs.total()
    )?;
    writeln!(
        out,
        "\nWhere they differ: a transaction bills two write units an item, so our \
         transactional consumers (orders' saga, inventory, analytics) pay more DynamoDB writes \
         than acquire → write → complete would; what that buys is the effect and its record in one \
         request, all or nothing. Powertools' way applies a counter's `ADD` and then completes its \
         record: an instance lost between the two counts the order twice on the retry, so the \
         cheaper column is not the same guarantee for analytics.\n\nHow the Powertools column is built: the same SNS, SQS and Lambda requests; each message a \
         consumer handles pays Powertools' acquire (`PutItem`) and complete (`UpdateItem`) around \
         the effect's own writes, one unit an item, where our transactional consumers write the \
         record and the effect in one `TransactWriteItems` (two units an item); our `on` \
         consumers (payment, notification) already do acquire → effect → complete. Its billed \
         time adds each extra DynamoDB round trip at this run's mean DynamoDB latency and each \
         record's Python cost over ours (per record, above). Durations are the emulator's: on \
         AWS a DynamoDB round trip takes a few milliseconds, so billed time there follows the \
         request counts. Not modelled: cold starts (Python's {} against ours in the table above, \
         billed for both since 2025-08-01), Lambda's REPORT lines in the logs, and the pollers' \
         requests on idle queues.",
        powertools_cold_start_ms.map_or("cold start (not measured)".into(), |ms| format!(
            "{ms:.0} ms"
        ))
    )
}

/// `percent` cut, not rounded, to a tenth: a share just under the target never reads as it.
fn tenths(percent: f64) -> f64 {
    (percent * 10.0).floor() / 10.0
}
