//! `make chaos`: the order flow through the real binaries under faults, checked against a run
//! of the same orders without them (see `orderflow_tests::chaos`). Exits non-zero, naming the
//! order and the table, if anything was lost or happened twice; `--seed` reproduces a run.

use clap::Parser;
use orderflow_tests::chaos::{Options, run};

/// Nothing lost, nothing twice, under faults.
#[derive(Parser)]
#[command(name = "chaos")]
struct Args {
    /// Orders to place.
    #[arg(long, env = "ORDERS", default_value_t = 10_000)]
    orders: usize,
    /// The seed of the plan and every fault draw (default: drawn, and printed).
    #[arg(long, env = "SEED")]
    seed: Option<u64>,
    /// Kills (`SIGKILL` mid-batch) of each function, at least.
    #[arg(long, default_value_t = 2)]
    kills_per_function: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    eprintln!(
        "chaos: {} orders, seed {seed} (again: make chaos ORDERS={} SEED={seed})",
        args.orders, args.orders
    );
    let report = run(&Options {
        orders: args.orders,
        seed,
        kills_per_function: args.kills_per_function,
    })
    .await;
    println!("\nchaos run, seed {seed}");
    for line in &report.figures {
        println!("  {line}");
    }
    if report.failures.is_empty() {
        println!("every check held: nothing lost, nothing twice");
        return;
    }
    let all = std::env::temp_dir().join(format!("chaos-{seed}-failures.txt"));
    let _ = std::fs::write(&all, report.failures.join("\n"));
    println!(
        "\n{} CHECKS FAILED (seed {seed}; all of them in {}):",
        report.failures.len(),
        all.display()
    );
    for failure in report.failures.iter().take(200) {
        println!("  - {failure}");
    }
    if report.failures.len() > 200 {
        println!("  … and {} more", report.failures.len() - 200);
    }
    std::process::exit(1);
}
