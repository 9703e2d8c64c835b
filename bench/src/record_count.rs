//! The consumer's cost per record in instructions, counted by callgrind: a batch file read as
//! `lambda_runtime` reads a function's payload, then through the consumer to the partial batch
//! response, a handler that does nothing (what criterion times in `shared/benches/hot_path.rs`).
//!
//! `orderflow-bench` runs the loop itself under valgrind (`--count-batches`), once for one
//! batch and once for [`BATCHES`] more, so the difference is warm batches only: start-up,
//! reading the file and the first batch's one-time work fall out.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::consume::{
    BatchOutcome, Consumer, HandlerError, Invocation, Message, Outcome, RecordOutcome,
};
use orderflow::event::OrderPlaced;
use orderflow::idempotency::{Idempotency, InMemoryIdempotencyStore};

use crate::callgrind;

/// Warm batches counted.
pub(crate) const BATCHES: usize = 100;

/// How far a counted batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Only read, as `lambda_runtime` reads a payload (`serde_path_to_error` over serde_json).
    Read,
    /// Read, then the consumer without idempotency.
    Bare,
    /// Read, then the consumer with a fresh in-memory idempotency store (every record takes
    /// the acquire path; building the store and the consumer is counted too).
    Idempotent,
}

/// One file's counts, per record.
#[derive(Clone, Debug)]
pub(crate) struct RecordCounts {
    /// Reading the batch as the runtime does.
    pub(crate) read: f64,
    /// Reading it and consuming it without idempotency.
    pub(crate) bare: f64,
    /// Reading it and consuming it with the in-memory store.
    pub(crate) idempotent: f64,
}

async fn noop(_: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    Ok(Outcome::done())
}

/// The child's side: `batches` batches of `file`, as `mode` says. Fails if a record of the
/// file is not handled, so a count is never of a path that gave up early.
pub(crate) fn run(file: &Path, mode: Mode, batches: usize) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bare = Consumer::new("bench", ()).on(noop);
    for _ in 0..batches {
        let event: SqsEvent = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_slice(black_box(&bytes)),
        )
        .with_context(|| format!("{} is not an SQS event", file.display()))?;
        let outcome = match mode {
            Mode::Read => {
                black_box(event);
                continue;
            }
            Mode::Bare => runtime.block_on(bare.process(&event, &Invocation::default())),
            Mode::Idempotent => {
                let consumer = Consumer::new("bench", ())
                    .on(noop)
                    .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())));
                runtime.block_on(consumer.process(&event, &Invocation::default()))
            }
        };
        check(&outcome)?;
        black_box(outcome.response());
    }
    Ok(())
}

fn check(outcome: &BatchOutcome) -> anyhow::Result<()> {
    if outcome.records.is_empty()
        || !outcome
            .records
            .iter()
            .all(|(_, o)| matches!(o, RecordOutcome::Handled))
    {
        bail!("not every record of the batch file was handled: {outcome:?}");
    }
    Ok(())
}

/// The parent's side: counts `file` in every mode, per record.
pub(crate) fn count(file: &Path, records_per_batch: usize) -> anyhow::Result<RecordCounts> {
    let per_record = |mode: Mode| -> anyhow::Result<f64> {
        let one = count_batches(file, mode, 1)?;
        let more = count_batches(file, mode, 1 + BATCHES)?;
        Ok(more.saturating_sub(one) as f64 / (BATCHES * records_per_batch) as f64)
    };
    Ok(RecordCounts {
        read: per_record(Mode::Read)?,
        bare: per_record(Mode::Bare)?,
        idempotent: per_record(Mode::Idempotent)?,
    })
}

fn count_batches(file: &Path, mode: Mode, batches: usize) -> anyhow::Result<u64> {
    let this = std::env::current_exe().context("cannot find orderflow-bench itself")?;
    let mut command = callgrind::command(&this)?;
    command
        .arg("--count-batches")
        .arg(file)
        .arg("--count-mode")
        .arg(format!("{mode:?}").to_lowercase())
        .arg("--count-repeat")
        .arg(batches.to_string());
    callgrind::count(
        command,
        &format!("{batches} batches of {} ({mode:?})", file.display()),
    )
}
