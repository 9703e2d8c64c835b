//! The idempotency record, the claim an invocation makes, and what acquiring one returns.

use serde::{Deserialize, Serialize};

/// Lifecycle of a key.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub enum Status {
    /// A handler is running (or crashed) and holds the key until its in-progress deadline.
    #[serde(rename = "INPROGRESS")]
    InProgress,
    /// The handler finished; its result is stored until the record expires.
    #[serde(rename = "COMPLETED")]
    Completed,
}

impl Status {
    /// The stored text: `INPROGRESS` or `COMPLETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "INPROGRESS",
            Status::Completed => "COMPLETED",
        }
    }
}

/// One stored record, as every store keeps it.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// `{function}#{eventId}` by default.
    pub id: String,
    /// Where the key is in its lifecycle.
    pub status: Status,
    /// When the record stops counting (epoch seconds; the table's TTL attribute).
    pub expiration: i64,
    /// While `INPROGRESS`: when the holder's Lambda deadline passes (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_expiration: Option<i64>,
    /// SHA-256 (hex) of the canonical payload.
    pub payload_hash: String,
    /// While `COMPLETED`: the handler's serialized result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The claim that wrote it: tells an invocation its own hold from another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// What an invocation asks of the store for one message.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Claim {
    /// The idempotency key.
    pub key: String,
    /// SHA-256 (hex) of the canonical payload.
    pub payload_hash: String,
    /// Unique per claim: an SDK retry of a write that did succeed finds its own hold.
    pub owner: String,
    /// Now, in epoch milliseconds (passed in so the decision is testable).
    pub now_ms: i64,
    /// When a completed record expires (epoch seconds).
    pub expires_at: i64,
    /// When this invocation's hold lapses if it never completes (epoch ms): its Lambda deadline.
    pub in_progress_until: i64,
}

impl Claim {
    /// The record this claim writes with `status` (and `result` when completed).
    pub fn record(&self, status: Status, result: Option<&str>) -> IdempotencyRecord {
        IdempotencyRecord {
            id: self.key.clone(),
            status,
            expiration: self.expires_at,
            in_progress_expiration: (status == Status::InProgress)
                .then_some(self.in_progress_until),
            payload_hash: self.payload_hash.clone(),
            result: result.map(str::to_owned),
            owner: Some(self.owner.clone()),
        }
    }

    /// Whether an existing record still holds the key against this claim (the negation of the
    /// store's write condition).
    pub fn is_blocked_by(&self, existing: &IdempotencyRecord) -> bool {
        let expired = existing.expiration * 1000 < self.now_ms;
        let abandoned = existing.status == Status::InProgress
            && existing
                .in_progress_expiration
                .is_some_and(|until| until < self.now_ms);
        !(expired || abandoned)
    }
}

/// The answer to [`crate::idempotency::IdempotencyStore::acquire`].
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Acquired {
    /// The key is this invocation's: run the handler.
    Started,
    /// Already done: here is the stored result; do not run the handler.
    Completed(String),
    /// Another invocation holds the key until this time (epoch ms): retry later.
    InProgress {
        /// The holder's in-progress deadline.
        until_ms: i64,
    },
}

/// The answer to [`crate::idempotency::IdempotencyStore::commit`].
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Committed {
    /// The record and every business write were written.
    Written,
    /// Nothing was written: the key was already taken (as for `acquire`).
    AlreadyTaken(Acquired),
}

/// Decides what an existing record that blocks `claim` means for it.
pub(crate) fn existing_outcome(
    claim: &Claim,
    existing: &IdempotencyRecord,
) -> Result<Acquired, crate::idempotency::IdempotencyError> {
    if existing.payload_hash != claim.payload_hash {
        return Err(crate::idempotency::IdempotencyError::PayloadMismatch {
            key: claim.key.clone(),
        });
    }
    // Our own hold (the SDK retried an acquire whose first attempt went through): ours to run.
    if existing.status == Status::InProgress
        && existing.owner.as_deref() == Some(claim.owner.as_str())
    {
        return Ok(Acquired::Started);
    }
    Ok(match existing.status {
        Status::Completed => Acquired::Completed(existing.result.clone().unwrap_or_default()),
        Status::InProgress => Acquired::InProgress {
            until_ms: existing.in_progress_expiration.unwrap_or(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(now_ms: i64) -> Claim {
        Claim {
            owner: "me".into(),
            key: "f#1".into(),
            payload_hash: "h".into(),
            now_ms,
            expires_at: 10_000,
            in_progress_until: now_ms + 500,
        }
    }

    #[test]
    fn live_records_block_and_lapsed_ones_do_not() {
        let in_progress = claim(1_000).record(Status::InProgress, None);
        assert!(claim(1_400).is_blocked_by(&in_progress));
        assert!(
            !claim(1_501).is_blocked_by(&in_progress),
            "a crashed holder's deadline passed"
        );
        let completed = claim(1_000).record(Status::Completed, Some("{}"));
        assert!(claim(5_000_000).is_blocked_by(&completed));
        assert!(!claim(10_000_001).is_blocked_by(&completed), "expired");
    }

    #[test]
    fn an_own_hold_is_started_and_another_one_is_in_progress() {
        let held = claim(1_000).record(Status::InProgress, None);
        assert_eq!(
            existing_outcome(&claim(1_100), &held),
            Ok(Acquired::Started)
        );
        let other = Claim {
            owner: "someone else".into(),
            ..claim(1_100)
        };
        assert_eq!(
            existing_outcome(&other, &held),
            Ok(Acquired::InProgress { until_ms: 1_500 })
        );
    }

    #[test]
    fn status_is_stored_in_capitals() {
        assert_eq!(
            serde_json::to_string(&Status::InProgress).unwrap(),
            "\"INPROGRESS\""
        );
        assert_eq!(Status::Completed.as_str(), "COMPLETED");
    }
}
