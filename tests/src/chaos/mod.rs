//! Nothing lost, nothing twice, under the faults production brings, through the real binaries
//! run by `orderflow-local` (`make chaos`).
//!
//! A run draws its plan from a seed ([`plan`]), runs the same orders once without faults (the
//! reference), then again while it injects: 5 % of orders published twice and every stream
//! batch delivered twice; 1 % poison between them; `SIGKILL` of function processes in the
//! middle of batches, several times each; throttling, 5xx and lost answers on DynamoDB, 5xx and
//! slow answers on SNS and SQS (the runner's proxy: [`orderflow_local::proxy`], never a code
//! path of a deployed function); one consumer stopped for a while; a burst larger than the
//! functions' concurrency; and a "bad deploy" that denies one consumer its table for a while,
//! fixed afterwards, its dead letters replayed with `orderflow dlq replay`. Then it checks
//! every table against the reference ([`tables`]), every DLQ, and accounts for every event in
//! the functions' logs ([`accounting`]). The seed reproduces the plan and the fault draws.

pub mod accounting;
pub mod plan;
pub mod tables;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orderflow::Publisher;
use orderflow_local::proxy::{Fault, FaultRule, Service};

use crate::stack::Deployed;
use plan::{Plan, Poison};

/// How long a stack may take to drain (visibility timeouts of killed batches, backoffs).
const SETTLE: Duration = Duration::from_secs(1800);

/// The consumers of `OrderPlaced`: each receives every order and every poison message.
pub const ORDER_PLACED_CONSUMERS: [&str; 5] = [
    "OrdersFunction",
    "PaymentFunction",
    "InventoryFunction",
    "NotificationFunction",
    "AnalyticsFunction",
];

/// The consumer stopped for a while.
const DOWN: &str = "NotificationFunction";
/// The consumer denied its table for a while (a bad deploy of its role), then fixed.
const DENIED: &str = "AnalyticsFunction";

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Orders.
    pub orders: usize,
    /// The seed of the plan and of every fault draw.
    pub seed: u64,
    /// Kills of each function, at least.
    pub kills_per_function: usize,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Figures, one a line.
    pub figures: Vec<String>,
    /// Every difference from what must hold; empty when the run passed.
    pub failures: Vec<String>,
}

impl Report {
    fn figure(&mut self, line: impl Into<String>) {
        let line = line.into();
        eprintln!("chaos: {line}");
        self.figures.push(line);
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }
}

/// Runs the reference and the chaos run and checks them.
pub async fn run(options: &Options) -> Report {
    let mut report = Report::default();
    let plan = Plan::draw(
        &format!("ch{:x}", options.seed),
        options.orders,
        options.seed,
    );
    report.figure(format!(
        "seed {} ({} orders, {} published twice, {} poison)",
        options.seed,
        plan.orders.len(),
        plan.orders.iter().filter(|o| o.twice).count(),
        plan.poison.len()
    ));

    // The reference: the same orders, once each, nothing injected.
    let started = Instant::now();
    let reference = Deployed::start("chaos-ref", &[], false).await;
    seed_stock(&reference).await;
    let reference_publisher = publisher_of(&reference);
    for order in &plan.orders {
        publish(&reference_publisher, &order.event).await;
    }
    if let Err(err) = reference.runner.settle(SETTLE, &|_| {}).await {
        report.check(false, format!("the reference run did not drain: {err}"));
    }
    let expected = tables::snapshot(&reference).await;
    reference.stop().await;
    report.figure(format!(
        "reference run: {} orders in {} s",
        plan.orders.len(),
        started.elapsed().as_secs()
    ));

    // The same orders with every fault.
    let started = Instant::now();
    let deployed = Deployed::start("chaos", &[], true).await;
    seed_stock(&deployed).await;
    let Some(proxy) = deployed.runner.proxy().cloned() else {
        report.check(
            false,
            "the endpoint is not an emulator's: nothing to inject faults with",
        );
        return report;
    };
    proxy.faults().reseed(options.seed);
    proxy.faults().set(fault_rules(false));
    let killing = Arc::new(AtomicBool::new(true));
    let killer = tokio::spawn(kill_mid_batch(
        deployed.runner.functions().clone(),
        options.seed,
        options.kills_per_function,
        killing.clone(),
    ));
    let publisher = publisher_of(&deployed);
    let mut rng = fastrand::Rng::with_seed(options.seed ^ 0x5eed);
    let burst = (plan.orders.len() / 4).max(1);
    let (down_from, down_until) = (plan.orders.len() / 4, plan.orders.len() / 2);
    let (deny_from, deny_until) = (plan.orders.len() * 3 / 5, plan.orders.len() * 7 / 10);
    let mut twice: BTreeMap<usize, Vec<&orderflow::Event>> = BTreeMap::new();
    // The burst: a quarter of the orders at once, more than the consumers' concurrency.
    let tasks: Vec<_> = plan.orders[..burst]
        .iter()
        .map(|order| {
            let (publisher, event) = (publisher.clone(), order.event.clone());
            tokio::spawn(async move { publish(&publisher, &event).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let poison: BTreeMap<usize, &Poison> = plan.poison.iter().map(|(n, p)| (*n, p)).collect();
    for (n, order) in plan.orders.iter().enumerate() {
        if n == down_from {
            deployed.runner.stop_function(DOWN).await;
            report.figure(format!("{DOWN} stopped at order {n}"));
        }
        if n == down_until {
            deployed.runner.start_function(DOWN);
            report.figure(format!("{DOWN} started again at order {n}"));
        }
        if n == deny_from {
            proxy.faults().set(fault_rules(true));
            report.figure(format!(
                "{DENIED} denied its tables from order {n} (a bad deploy)"
            ));
        }
        if n == deny_until {
            proxy.faults().set(fault_rules(false));
            report.figure(format!("{DENIED}'s access fixed at order {n}"));
        }
        if n >= burst {
            publish(&publisher, &order.event).await;
        }
        if order.twice {
            twice
                .entry(n + rng.usize(1..50))
                .or_default()
                .push(&order.event);
        }
        for again in twice.remove(&n).unwrap_or_default() {
            publish(&publisher, again).await;
        }
        if let Some(poison) = poison.get(&n) {
            publish_poison(&deployed, poison).await;
        }
    }
    for again in twice.into_values().flatten() {
        publish(&publisher, again).await;
    }
    deployed.runner.start_function(DOWN);
    killing.store(false, Ordering::SeqCst);
    let kills = killer.await.unwrap_or_default();
    proxy.faults().set(Vec::new());
    let injected = proxy.tally().snapshot();
    report.figure(format!(
        "kills (SIGKILL mid-batch): {}",
        kills
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (function, n) in &kills {
        report.check(
            *n >= options.kills_per_function,
            format!(
                "{function} was killed {n} times, not {}",
                options.kills_per_function
            ),
        );
    }
    report.figure(format!("faults injected: {}", injected_by_kind(&injected)));
    if let Err(err) = deployed.runner.settle(SETTLE, &|_| {}).await {
        report.check(false, format!("the chaos run did not drain: {err}"));
    }
    report.figure(format!(
        "chaos run drained in {} s",
        started.elapsed().as_secs()
    ));

    // The DLQs: the poison in every OrderPlaced consumer's, at the first attempt; the denied
    // consumer's records in its own; nothing else.
    let denied = check_dead_letters(&deployed, &plan, &kills, &mut report).await;
    // Fix the cause (done: access is back) and replay what it dead-lettered.
    replay(&deployed, &denied, &mut report).await;
    if let Err(err) = deployed.runner.settle(SETTLE, &|_| {}).await {
        report.check(false, format!("the replay did not drain: {err}"));
    }
    let left = check_dead_letters(&deployed, &plan, &kills, &mut report).await;
    report.check(
        left.is_empty(),
        format!(
            "after the replay {DENIED}'s DLQ still holds {} dead letters besides the poison",
            left.len()
        ),
    );

    // Every table as the reference left it.
    let got = tables::snapshot(&deployed).await;
    let differences = tables::differences(&expected, &got);
    report.figure(format!(
        "tables: {} items compared over {} tables, {} differences",
        expected.values().map(BTreeMap::len).sum::<usize>(),
        expected.len(),
        differences.len()
    ));

    // Every event accounted for.
    let ledger = accounting::read(deployed.runner.log.dir());
    let (figures, lost) = accounting::account(&ledger, &plan, &ORDER_PLACED_CONSUMERS);
    for line in figures {
        report.figure(line);
    }
    report.failures.extend(lost);
    report.failures.extend(differences);
    deployed.stop().await;
    report
}

fn publisher_of(deployed: &Deployed) -> Arc<Publisher> {
    Arc::new(Publisher::new(
        deployed.aws.sns.clone(),
        deployed.output("EventsTopicArn"),
    ))
}

async fn seed_stock(deployed: &Deployed) {
    for n in 0..plan::STOCKED_SKUS {
        deployed.seed_stock(&plan::sku(n), plan::STOCK).await;
    }
    for n in 0..plan::SOLD_OUT_SKUS {
        deployed
            .seed_stock(&plan::sku(plan::STOCKED_SKUS + n), 0)
            .await;
    }
}

/// Publishes as another system does; a failed publish is retried (the publisher's own retries
/// first), since the orders of the plan must all go out.
async fn publish(publisher: &Publisher, event: &orderflow::Event) {
    for _ in 0..5 {
        if publisher.publish(event).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("chaos: publishing {} failed five times", event.event_id);
}

async fn publish_poison(deployed: &Deployed, poison: &Poison) {
    let attribute = |kind: &str, value: &str| {
        aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type(kind)
            .string_value(value)
            .build()
    };
    let (Ok(event_type), Ok(version)) = (
        attribute("String", "OrderPlaced"),
        attribute("Number", poison.version),
    ) else {
        return;
    };
    let _ = deployed
        .aws
        .sns
        .publish()
        .topic_arn(deployed.output("EventsTopicArn"))
        .message(&poison.body)
        .message_attributes("eventType", event_type)
        .message_attributes("eventVersion", version)
        .send()
        .await;
}

/// The proxy's faults while the orders go out; `deny` adds the bad deploy.
fn fault_rules(deny: bool) -> Vec<FaultRule> {
    let rule = |caller: Option<&str>, service, operations: &[&str], probability, fault| FaultRule {
        caller: caller.map(str::to_owned),
        service: Some(service),
        operations: operations.iter().map(|o| (*o).to_owned()).collect(),
        probability,
        fault,
    };
    let mut rules = Vec::new();
    if deny {
        rules.push(rule(Some(DENIED), Service::DynamoDb, &[], 1.0, Fault::Deny));
    }
    rules.extend([
        rule(None, Service::DynamoDb, &[], 0.03, Fault::Throttle),
        rule(None, Service::DynamoDb, &[], 0.01, Fault::ServerError),
        // The write happened, the caller heard a 500: its retry must find its own work.
        rule(
            Some("Function"),
            Service::DynamoDb,
            &["PutItem", "UpdateItem", "TransactWriteItems"],
            0.01,
            Fault::LoseAnswer,
        ),
        rule(None, Service::Sns, &[], 0.02, Fault::ServerError),
        rule(
            None,
            Service::Sns,
            &[],
            0.01,
            Fault::Slow(Duration::from_millis(1500)),
        ),
        // The relay's event source reading the orders table's stream: a failed read must
        // neither skip nor repeat a record past what the relay's idempotency absorbs.
        rule(
            None,
            Service::DynamoDbStreams,
            &[],
            0.05,
            Fault::ServerError,
        ),
        rule(None, Service::Sqs, &[], 0.02, Fault::ServerError),
        rule(
            None,
            Service::Sqs,
            &[],
            0.01,
            Fault::Slow(Duration::from_millis(1500)),
        ),
    ]);
    rules
}

fn injected_by_kind(
    usage: &BTreeMap<orderflow_local::proxy::Key, orderflow_local::proxy::Usage>,
) -> String {
    let by_service = orderflow_local::proxy::tally::group_by(usage, |k| Some(k.service.as_str()));
    by_service
        .iter()
        .map(|(service, u)| format!("{service} {} of {} requests", u.injected, u.requests))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kills functions with `SIGKILL` while they have a batch in flight, in a seeded order, until
/// told to stop and each was killed `at_least` times; how many times each was.
async fn kill_mid_batch(
    functions: BTreeMap<String, Arc<orderflow_local::Function>>,
    seed: u64,
    at_least: usize,
    going: Arc<AtomicBool>,
) -> BTreeMap<String, usize> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x4b11);
    let mut kills: BTreeMap<String, usize> = functions.keys().map(|f| (f.clone(), 0)).collect();
    let names: Vec<String> = functions.keys().cloned().collect();
    loop {
        let done = kills.values().all(|n| *n >= at_least);
        if !going.load(Ordering::SeqCst) && done {
            return kills;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(1500..4000))).await;
        // The least killed first, ties broken by the seed.
        let fewest = kills.values().copied().min().unwrap_or(0);
        let candidates: Vec<&String> = names.iter().filter(|n| kills[*n] == fewest).collect();
        let Some(name) = candidates.get(rng.usize(0..candidates.len().max(1))) else {
            continue;
        };
        let function = &functions[*name];
        // Wait for a batch in flight (a function with nothing to do is not killed mid-batch).
        let until = Instant::now() + Duration::from_secs(20);
        while function.in_flight() == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if function.in_flight() > 0 {
            function.kill_all().await;
            *kills.entry((*name).clone()).or_default() += 1;
        } else if !going.load(Ordering::SeqCst) {
            // Nothing left to do for it: the orders are out and it is idle.
            *kills.entry((*name).clone()).or_default() = at_least.max(kills[*name]);
        }
    }
}

/// Checks every DLQ; returns the denied consumer's dead letters that are not poison (the ones
/// to replay).
async fn check_dead_letters(
    deployed: &Deployed,
    plan: &Plan,
    kills: &BTreeMap<String, usize>,
    report: &mut Report,
) -> Vec<crate::stack::DeadLetter> {
    let poison: BTreeSet<&str> = plan.poison.iter().map(|(_, p)| p.body.as_str()).collect();
    let mut replayable = Vec::new();
    for (service, queue) in deployed.dead_letter_queues() {
        let function = format!("{service}Function");
        let letters = deployed.peek(&queue).await;
        let receives_orders = ORDER_PLACED_CONSUMERS.contains(&function.as_str());
        for (_, expected) in &plan.poison {
            let found = letters.iter().find(|l| l.body == expected.body);
            match found {
                Some(letter) if receives_orders => {
                    report.check(
                        letter.error_kind == expected.kind && !letter.error_message.is_empty(),
                        format!(
                            "{service} DLQ holds a poison message as {} ({}), not {}",
                            letter.error_kind, letter.error_message, expected.kind
                        ),
                    );
                    // One attempt: a batch killed with it in flight comes back once more
                    // without the consumer having tried it.
                    let killed = kills.get(&function).copied().unwrap_or(0) as u32;
                    report.check(
                        letter.receive_count >= 1 && letter.receive_count <= 1 + killed,
                        format!(
                            "{service} dead-lettered a poison message after {} receives (killed {killed} times)",
                            letter.receive_count
                        ),
                    );
                }
                None if receives_orders => report.check(
                    false,
                    format!("{service} DLQ lacks the poison message {}", expected.body),
                ),
                _ => {}
            }
        }
        for letter in letters.iter().filter(|l| !poison.contains(l.body.as_str())) {
            if function == DENIED {
                replayable.push(letter.clone());
            } else {
                report.check(
                    false,
                    format!(
                        "{service} DLQ holds {} ({}): {}",
                        letter.error_kind, letter.error_message, letter.body
                    ),
                );
            }
        }
    }
    replayable
}

/// Replays the denied consumer's dead letters with the operator's tool, by error kind.
async fn replay(deployed: &Deployed, letters: &[crate::stack::DeadLetter], report: &mut Report) {
    let kinds: BTreeSet<&str> = letters.iter().map(|l| l.error_kind.as_str()).collect();
    report.figure(format!(
        "{DENIED} dead-lettered {} records while denied ({}); replaying them",
        letters.len(),
        kinds.iter().copied().collect::<Vec<_>>().join(", ")
    ));
    let Some((_, queue)) = deployed
        .dead_letter_queues()
        .into_iter()
        .find(|(service, _)| format!("{service}Function") == DENIED)
    else {
        report.check(false, format!("{DENIED} has no DLQ"));
        return;
    };
    for kind in kinds {
        let (code, out, err) = crate::run_orderflow(
            &deployed.aws.endpoint,
            &["dlq", "replay", "--queue", &queue, "--error-kind", kind],
        );
        report.check(
            code == 0,
            format!("orderflow dlq replay --error-kind {kind} failed ({code}): {out}{err}"),
        );
    }
}
