//! What a million orders cost on AWS, from the requests the runner counted and the durations
//! it measured, at public prices; beside the same flow built with Powertools' idempotency
//! (acquire + the effect's own writes + complete, per message).

use std::collections::BTreeSet;
use std::time::Duration;

use orderflow_local::proxy::{Key, Service, Usage};

use crate::e2e::Phase;

/// A public price, where it was read and when.
pub(crate) struct Price {
    /// What is charged.
    pub(crate) what: &'static str,
    /// US dollars per unit.
    pub(crate) usd: f64,
    /// The unit.
    pub(crate) unit: &'static str,
    /// Where it is stated.
    pub(crate) source: &'static str,
    /// When.
    pub(crate) date: &'static str,
}

/// us-east-1, the first pricing tier of each, free tiers left out.
pub(crate) const PRICES: [Price; 7] = [
    Price {
        what: "Lambda requests",
        usd: 0.20 / 1e6,
        unit: "request",
        source: "https://aws.amazon.com/lambda/pricing/",
        date: "AWS price list of 2026-08-31",
    },
    Price {
        what: "Lambda duration, arm64",
        usd: 0.000_013_333_4,
        unit: "GB-second",
        source: "https://aws.amazon.com/lambda/pricing/ (INIT billed for custom runtimes)",
        date: "AWS price list of 2026-08-31",
    },
    Price {
        what: "SQS standard requests",
        usd: 0.40 / 1e6,
        unit: "request (each 64 KB; a batch of 10 is one)",
        source: "https://aws.amazon.com/sqs/pricing/",
        date: "read 2026-12-04",
    },
    Price {
        what: "SNS standard publishes",
        usd: 0.50 / 1e6,
        unit: "request (each 64 KB; deliveries to SQS free)",
        source: "https://aws.amazon.com/sns/pricing/",
        date: "read 2026-12-04",
    },
    Price {
        what: "DynamoDB on-demand writes",
        usd: 0.625 / 1e6,
        unit: "write request unit (1 KB; 2 in a transaction)",
        source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        date: "since 2024-11-01",
    },
    Price {
        what: "DynamoDB on-demand reads",
        usd: 0.125 / 1e6,
        unit: "read request unit (4 KB, strongly consistent)",
        source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        date: "since 2024-11-01",
    },
    Price {
        what: "CloudWatch Logs ingestion (Lambda, first 10 TB)",
        usd: 0.50 / 1e9,
        unit: "byte",
        source: "https://aws.amazon.com/cloudwatch/pricing/",
        date: "tiered since 2025-05-01",
    },
];

const LAMBDA_REQUEST: usize = 0;
const LAMBDA_GB_SECOND: usize = 1;
const SQS_REQUEST: usize = 2;
const SNS_REQUEST: usize = 3;
const WRITE_UNIT: usize = 4;
const READ_UNIT: usize = 5;
const LOG_BYTE: usize = 6;

/// Memory of every function in the template.
const MEMORY_GB: f64 = 0.25;

/// One flow's units per order, and their cost per million orders.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flow {
    /// Lambda invocations.
    pub(crate) invocations: f64,
    /// Billed Lambda milliseconds.
    pub(crate) billed_ms: f64,
    /// SQS requests (the event sources' receives, deletes, visibility changes; the
    /// functions' own sends).
    pub(crate) sqs_requests: f64,
    /// SNS publish requests (the order's own publish included).
    pub(crate) sns_requests: f64,
    /// DynamoDB requests.
    pub(crate) dynamodb_requests: f64,
    /// Write request units.
    pub(crate) write_units: f64,
    /// Read request units.
    pub(crate) read_units: f64,
    /// Log bytes.
    pub(crate) log_bytes: f64,
}

impl Flow {
    /// Dollars per million orders, by line.
    pub(crate) fn cost_per_million(&self) -> [(&'static str, f64); 7] {
        let m = 1e6;
        [
            (
                PRICES[LAMBDA_REQUEST].what,
                self.invocations * m * PRICES[LAMBDA_REQUEST].usd,
            ),
            (
                PRICES[LAMBDA_GB_SECOND].what,
                self.billed_ms / 1e3 * MEMORY_GB * m * PRICES[LAMBDA_GB_SECOND].usd,
            ),
            (
                PRICES[SQS_REQUEST].what,
                self.sqs_requests * m * PRICES[SQS_REQUEST].usd,
            ),
            (
                PRICES[SNS_REQUEST].what,
                self.sns_requests * m * PRICES[SNS_REQUEST].usd,
            ),
            (
                PRICES[WRITE_UNIT].what,
                self.write_units * m * PRICES[WRITE_UNIT].usd,
            ),
            (
                PRICES[READ_UNIT].what,
                self.read_units * m * PRICES[READ_UNIT].usd,
            ),
            (
                PRICES[LOG_BYTE].what,
                self.log_bytes * m * PRICES[LOG_BYTE].usd,
            ),
        ]
    }

    /// Dollars per million orders.
    pub(crate) fn total(&self) -> f64 {
        self.cost_per_million().iter().map(|(_, usd)| usd).sum()
    }
}

/// Units of one function per order.
#[derive(Clone, Debug, Default)]
struct Units {
    requests: f64,
    write_units: f64,
    read_units: f64,
}

/// The DynamoDB units of `usage` (items of up to 1 KB, reads of up to 4 KB, strongly
/// consistent: what these tables hold and how the functions read).
fn dynamodb_units(operation: &str, usage: &Usage) -> Units {
    let requests = usage.requests as f64;
    match operation {
        "TransactWriteItems" => Units {
            requests,
            write_units: 2.0 * usage.entries as f64,
            read_units: 0.0,
        },
        "PutItem" | "UpdateItem" | "DeleteItem" => Units {
            requests,
            write_units: requests,
            read_units: 0.0,
        },
        "BatchWriteItem" => Units {
            requests,
            write_units: usage.entries as f64,
            read_units: 0.0,
        },
        "TransactGetItems" => Units {
            requests,
            write_units: 0.0,
            read_units: 2.0 * usage.entries as f64,
        },
        "GetItem" | "Query" | "BatchGetItem" | "Scan" => Units {
            requests,
            write_units: 0.0,
            read_units: requests,
        },
        _ => Units {
            requests,
            ..Units::default()
        },
    }
}

/// The function a caller name belongs to (`PaymentFunction event source` → `PaymentFunction`).
fn function_of(caller: &str) -> &str {
    caller.strip_suffix(" event source").unwrap_or(caller)
}

/// orderflow as measured, and the same flow with Powertools' idempotency, per order.
pub(crate) struct Comparison {
    /// What was measured.
    pub(crate) orderflow: Flow,
    /// The same requests but DynamoDB as Powertools' idempotency does it, and its per-record
    /// CPU.
    pub(crate) powertools: Flow,
}

/// Builds both flows from a phase (requests counted, durations measured) and, for the
/// Powertools side, its measured per-record cost (µs) over ours.
pub(crate) fn compare(
    phase: &Phase,
    orders_published_per_order: f64,
    per_record_extra: Option<Duration>,
) -> Comparison {
    let orders = phase.orders.max(1) as f64;
    let per_order = |n: f64| n / orders;
    let mut ours = Flow {
        sns_requests: orders_published_per_order,
        log_bytes: per_order(phase.log_bytes as f64),
        ..Flow::default()
    };
    for run in phase.functions.values() {
        ours.invocations += per_order(run.invocations as f64);
        ours.billed_ms += per_order(run.billed_ms());
    }
    let mut functions: BTreeSet<&str> = BTreeSet::new();
    for (key, usage) in &phase.requests {
        let Key {
            caller,
            service,
            operation,
        } = key;
        match service {
            // Receives that found nothing follow idle time, not orders.
            Service::Sqs => ours.sqs_requests += per_order((usage.requests - usage.empty) as f64),
            Service::Sns => ours.sns_requests += per_order(usage.requests as f64),
            Service::DynamoDb => {
                let units = dynamodb_units(operation, usage);
                ours.dynamodb_requests += per_order(units.requests);
                ours.write_units += per_order(units.write_units);
                ours.read_units += per_order(units.read_units);
                functions.insert(function_of(caller));
            }
            // Streams read by a Lambda event source are free; STS is not billed.
            _ => {}
        }
    }
    // Powertools: every message a consumer handles costs an acquire (PutItem) and a complete
    // (UpdateItem) around the effect's own writes, which are plain writes (1 unit an item),
    // never one transaction with the record. Our transactional consumers write the record
    // and the effect in one TransactWriteItems (2 units an item); our `on` consumers already
    // do acquire + effect + complete.
    let mut powertools = ours.clone();
    let mut extra_requests = 0.0;
    for function in &functions {
        let (transactions, items) = phase
            .requests
            .iter()
            .filter(|(k, _)| {
                function_of(&k.caller) == *function
                    && k.service == Service::DynamoDb
                    && k.operation == "TransactWriteItems"
            })
            .fold((0.0, 0.0), |(t, i), (_, u)| {
                (
                    t + per_order(u.requests as f64),
                    i + per_order(u.entries as f64),
                )
            });
        // Each transaction holds the idempotency record and the effect's items: Powertools
        // writes the same items one by one between its acquire and its complete.
        let effect_items = items - transactions;
        let powertools_requests = 2.0 * transactions + effect_items;
        let powertools_units = 2.0 * transactions + effect_items;
        powertools.dynamodb_requests += powertools_requests - transactions;
        powertools.write_units += powertools_units - 2.0 * items;
        extra_requests += powertools_requests - transactions;
    }
    // The extra round trips take as long as the emulator's DynamoDB answers did.
    let dynamodb = phase
        .requests
        .iter()
        .filter(|(k, _)| k.service == Service::DynamoDb)
        .fold((0u64, Duration::ZERO), |(n, t), (_, u)| {
            (n + u.requests, t + u.upstream)
        });
    let mean_dynamodb_ms = dynamodb.1.as_secs_f64() * 1e3 / dynamodb.0.max(1) as f64;
    powertools.billed_ms += extra_requests * mean_dynamodb_ms;
    if let Some(extra) = per_record_extra {
        let records: f64 = phase
            .functions
            .values()
            .map(|run| per_order(run.records as f64))
            .sum();
        powertools.billed_ms += records * extra.as_secs_f64() * 1e3;
    }
    Comparison {
        orderflow: ours,
        powertools,
    }
}
