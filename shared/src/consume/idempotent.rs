//! The idempotency layer: wraps a record's handler so that its effect happens once per event
//! and consumer, whatever SNS and SQS deliver.
//!
//! Two ways through, chosen by how the handler was registered:
//! - `on`: acquire the record (one conditional write) → run the handler → complete it with the
//!   outcome; a failed handler releases it so a retry need not wait for the hold to lapse.
//! - `on_transactional`: run the handler → commit the record together with the handler's writes
//!   in one transaction: either both happen or neither. When a write's own condition fails
//!   (another record changed the same order or stock first), the handler runs again at once on
//!   fresh data, a few times, before the record goes back to the queue with its backoff.
//!
//! Copies of one event handled at once in this environment (two in one batch) take turns on
//! its key, so the later copy finds the first's outcome instead of its hold.
//!
//! A duplicate (found in the cache, completed, or taken by the commit) returns the stored
//! follow-up events, which the caller publishes again: their ids are the same, so downstream
//! idempotency absorbs them, and a first attempt that failed between commit and publish is
//! repaired.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{DuplicateBy, Outcome, RecordError};
use crate::event::Event;
use crate::idempotency::{Acquired, Claim, Committed, Idempotency, IdempotencyError};

/// A handler registered with `on` returned writes: only `on_transactional` commits them.
pub(super) const WRITES_WITHOUT_TRANSACTION: &str =
    "writes returned by a handler not registered with on_transactional";

/// How many times a transactional handler runs again at once when a write's condition failed
/// on data another record changed meanwhile, before the record waits for its backoff. Optimistic
/// concurrency: two saga events about one order, or two orders of one SKU, race; the loser reads
/// again and decides on what the winner wrote, in milliseconds rather than after 10–20 s.
pub(super) const CONFLICT_RERUNS: u32 = 3;

/// What went through the layer.
pub(super) enum Layered {
    /// The handler ran: these are its follow-up events.
    Handled(Vec<Event>),
    /// A duplicate, recognised as the second field says (found before the handler ran, or, on
    /// the transactional path, when its commit was cancelled and its writes discarded); these
    /// are the first run's follow-up events.
    Duplicate(Vec<Event>, DuplicateBy),
}

/// The idempotency layer around one record's handler.
pub(super) struct IdempotencyLayer<'a> {
    pub(super) idempotency: &'a Idempotency,
}

impl IdempotencyLayer<'_> {
    /// Runs `handler` (an `on` route's) at most once for `claim`.
    pub(super) async fn run<H, F>(&self, claim: Claim, handler: H) -> Result<Layered, RecordError>
    where
        H: FnOnce() -> F,
        F: Future<Output = Result<Outcome, RecordError>>,
    {
        let _turn = self.idempotency.turn(&claim).await;
        if let Some(stored) = self.idempotency.cached(&claim) {
            return duplicate(&claim, &stored, DuplicateBy::Cache);
        }
        self.acquire_then_complete(claim, handler).await
    }

    /// Runs `handler` (an `on_transactional` route's) and commits its effect at most once for
    /// `claim`; the handler may run again when its writes' conditions failed on data that
    /// changed meanwhile ([`CONFLICT_RERUNS`]).
    pub(super) async fn run_transactional<H, F>(
        &self,
        claim: Claim,
        handler: H,
    ) -> Result<Layered, RecordError>
    where
        H: Fn() -> F,
        F: Future<Output = Result<Outcome, RecordError>>,
    {
        let _turn = self.idempotency.turn(&claim).await;
        if let Some(stored) = self.idempotency.cached(&claim) {
            return duplicate(&claim, &stored, DuplicateBy::Cache);
        }
        let mut reruns = 0;
        loop {
            match self.commit_with_effect(&claim, &handler).await {
                Err(RecordError::Idempotency(IdempotencyError::Conflict(conflict)))
                    if reruns < CONFLICT_RERUNS =>
                {
                    reruns += 1;
                    info!(key = %claim.key, %conflict, rerun = reruns, "a write's condition failed on data changed meanwhile; deciding again");
                }
                result => return result,
            }
        }
    }

    /// Acquire → run → complete.
    async fn acquire_then_complete<H, F>(
        &self,
        claim: Claim,
        handler: H,
    ) -> Result<Layered, RecordError>
    where
        H: FnOnce() -> F,
        F: Future<Output = Result<Outcome, RecordError>>,
    {
        match self.idempotency.store().acquire(&claim).await? {
            Acquired::Started => {}
            taken => return self.taken(claim, taken, DuplicateBy::Record),
        }
        let outcome = match handler().await {
            Ok(outcome) if outcome.writes.is_empty() => outcome,
            Ok(_) => {
                self.release(&claim).await;
                return Err(RecordError::Misconfigured(
                    WRITES_WITHOUT_TRANSACTION.into(),
                ));
            }
            Err(err) => {
                self.release(&claim).await;
                return Err(err);
            }
        };
        let stored = StoredOutcome::of(&outcome)?;
        self.idempotency.store().complete(&claim, &stored).await?;
        self.idempotency.remember(&claim, &stored);
        Ok(Layered::Handled(outcome.events))
    }

    /// Run → commit the record and the handler's writes in one transaction.
    async fn commit_with_effect<H, F>(
        &self,
        claim: &Claim,
        handler: &H,
    ) -> Result<Layered, RecordError>
    where
        H: Fn() -> F,
        F: Future<Output = Result<Outcome, RecordError>>,
    {
        let outcome = handler().await?;
        let stored = StoredOutcome::of(&outcome)?;
        match self
            .idempotency
            .store()
            .commit(claim, &stored, outcome.writes)
            .await?
        {
            Committed::Written => {
                self.idempotency.remember(claim, &stored);
                Ok(Layered::Handled(outcome.events))
            }
            // Someone else's commit won: their hold is Started from our side, still running.
            Committed::AlreadyTaken(Acquired::Started) => Err(RecordError::InProgress {
                key: claim.key.clone(),
                until_ms: None,
            }),
            Committed::AlreadyTaken(taken) => {
                self.taken(claim.clone(), taken, DuplicateBy::Transaction)
            }
        }
    }

    /// The record was found taken (`how`): completed (a duplicate) or held by another
    /// invocation.
    fn taken(
        &self,
        claim: Claim,
        taken: Acquired,
        how: DuplicateBy,
    ) -> Result<Layered, RecordError> {
        match taken {
            Acquired::Completed(stored) => {
                self.idempotency.remember(&claim, &stored);
                duplicate(&claim, &stored, how)
            }
            Acquired::InProgress { until_ms } => Err(RecordError::InProgress {
                key: claim.key,
                until_ms: Some(until_ms),
            }),
            Acquired::Started => Err(RecordError::InProgress {
                key: claim.key,
                until_ms: None,
            }),
        }
    }

    async fn release(&self, claim: &Claim) {
        if let Err(err) = self.idempotency.store().release(claim).await {
            warn!(key = %claim.key, error = %err, "could not release the idempotency record; it lapses at the deadline");
        }
    }
}

fn duplicate(claim: &Claim, stored: &str, how: DuplicateBy) -> Result<Layered, RecordError> {
    info!(key = %claim.key, found_by = ?how, "duplicate; using the stored outcome");
    Ok(Layered::Duplicate(StoredOutcome::events(stored)?, how))
}

/// What the idempotency record stores: the handler's result and the events to (re)publish.
#[derive(Default, Deserialize, Serialize)]
struct StoredOutcome {
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

impl StoredOutcome {
    fn of(outcome: &Outcome) -> Result<String, RecordError> {
        let events = outcome
            .events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                RecordError::Misconfigured(format!("follow-up event cannot be serialized: {err}"))
            })?;
        serde_json::to_string(&StoredOutcome {
            result: outcome.result.clone(),
            events,
        })
        .map_err(|err| RecordError::Misconfigured(format!("result cannot be serialized: {err}")))
    }

    fn events(stored: &str) -> Result<Vec<Event>, RecordError> {
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let stored: StoredOutcome = serde_json::from_str(stored).map_err(|err| {
            RecordError::Misconfigured(format!("stored outcome is unreadable: {err}"))
        })?;
        stored
            .events
            .into_iter()
            .map(|e| Event::from_value(e).map_err(RecordError::from))
            .collect()
    }
}
