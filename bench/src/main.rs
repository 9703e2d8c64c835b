//! `orderflow-bench`: measures what `make bench` reports and writes `bench/REPORT.md`.
//!
//! In one run, on this machine: each function's cold start and peak memory, each binary's size
//! (stripped, and deflated as in its deployment zip), the per-record cost of the consumer from
//! criterion's results (`make bench` runs `cargo bench` first), and Powertools for AWS Lambda
//! (Python) on the same batch file, per record warm and at cold start.

mod callgrind;
mod cold_start;
mod cost;
mod criterion;
mod e2e;
mod powertools;
mod record_count;
mod report;
mod size;

use std::path::PathBuf;

use clap::Parser;

/// Measure and write the benchmark report.
#[derive(Parser)]
struct Args {
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The function binaries to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "orders,payment,inventory,notification,analytics,outbox-relay"
    )]
    functions: Vec<String>,
    /// Cold starts per function.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The floor measured beside them (`bench/runtime-alone`), in the same folder; the report
    /// says so when it is missing.
    #[arg(long, default_value = "lambda-runtime-alone")]
    floor: String,
    /// criterion's output folder.
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
    /// The Python with `aws-lambda-powertools[parser]` and boto3; without it the report says
    /// so and shows ours alone.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The batch both consumers read.
    #[arg(long, default_value = "bench/sqs-batch-10.json")]
    batch: PathBuf,
    /// The Powertools side of the comparison.
    #[arg(long, default_value = "bench/powertools_bench.py")]
    powertools_script: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "bench/REPORT.md")]
    report: PathBuf,
    /// Orders in the end-to-end burst (0: no end-to-end run).
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Orders in the paced end-to-end run.
    #[arg(long, default_value_t = 500)]
    paced_orders: usize,
    /// The paced run's rate, as a share of the burst's throughput.
    #[arg(long, default_value_t = 0.5)]
    paced_share: f64,
    /// Seconds each measurement of the emulator's ceiling runs.
    #[arg(long, default_value_t = 5)]
    ceiling_seconds: u64,
    /// The batch file as raw delivery hands it over (counted in instructions beside `--batch`).
    #[arg(long, default_value = "bench/sqs-batch-10-raw.json")]
    raw_batch: PathBuf,
    /// Internal: run `--count-repeat` batches of this file through the consumer and exit (what
    /// the report's instruction counts run under callgrind).
    #[arg(long, hide = true)]
    count_batches: Option<PathBuf>,
    /// Internal: how far each counted batch goes.
    #[arg(long, hide = true, value_enum, default_value_t = record_count::Mode::Bare)]
    count_mode: record_count::Mode,
    /// Internal: how many batches to count.
    #[arg(long, hide = true, default_value_t = 1)]
    count_repeat: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(file) = &args.count_batches {
        return record_count::run(file, args.count_mode, args.count_repeat);
    }
    let floor_binary = args.bin_dir.join(&args.floor);
    let binaries: Vec<PathBuf> = args
        .functions
        .iter()
        .map(|name| args.bin_dir.join(name))
        .chain(floor_binary.is_file().then(|| floor_binary.clone()))
        .collect();
    eprintln!(
        "cold start: {} and {} ({} runs each, in turns)",
        args.functions.join(", "),
        if floor_binary.is_file() {
            args.floor.as_str()
        } else {
            "no floor"
        },
        args.runs
    );
    let paths: Vec<&std::path::Path> = binaries.iter().map(PathBuf::as_path).collect();
    let mut colds = cold_start::measure_interleaved(&paths, args.runs)?;
    eprintln!("instructions at start: each binary once under callgrind");
    let mut uncounted = None;
    for (cold, path) in colds.iter_mut().zip(&paths) {
        let Ok(cold) = cold else { continue };
        match cold_start::count_instructions(path) {
            Ok(count) => cold.instructions = Some(count),
            Err(why) => {
                uncounted.get_or_insert_with(|| format!("{why:#}"));
            }
        }
    }
    let mut colds = colds.into_iter();
    let mut functions = Vec::new();
    for (name, binary) in args.functions.iter().zip(&binaries) {
        let cold = colds
            .next()
            .ok_or_else(|| anyhow::anyhow!("no cold starts of {name}"))??;
        functions.push(report::Function {
            name: name.clone(),
            cold,
            size: size::of(binary)?,
        });
    }
    let floor = colds
        .next()
        .unwrap_or_else(|| Err(anyhow::anyhow!("{} not built", floor_binary.display())));
    let consumer = criterion::read(&args.criterion_dir)?;
    // criterion's batch benches read this same file (`include_bytes!` in hot_path.rs).
    let records_per_batch = u32::try_from(record_count::records_in(&args.batch)?)?;
    eprintln!("per record in instructions: the batch files under callgrind");
    let counts = [&args.batch, &args.raw_batch].map(|file| record_count::count(file));
    let powertools = match &args.python {
        Some(python) => {
            eprintln!(
                "Powertools for AWS Lambda (Python) on {}",
                args.batch.display()
            );
            powertools::measure(python, &args.powertools_script, &args.batch)
        }
        None => Err(anyhow::anyhow!("no --python given")),
    };
    let end_to_end = if args.orders == 0 {
        Err(anyhow::anyhow!("not run (--orders 0)"))
    } else {
        let options = e2e::Options {
            orders: args.orders,
            paced_orders: args.paced_orders,
            paced_share: args.paced_share,
            publishers: 8,
            ceiling_for: std::time::Duration::from_secs(args.ceiling_seconds),
        };
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(e2e::run(&options))
    };
    if let Err(err) = &end_to_end {
        eprintln!("end to end: {err:#}");
    }
    let text = report::Report {
        functions,
        floor,
        uncounted,
        consumer,
        powertools,
        records_per_batch,
        record_counts: counts,
        end_to_end,
    }
    .render()?;
    std::fs::write(&args.report, &text)?;
    print!("{text}");
    eprintln!("written to {}", args.report.display());
    Ok(())
}
