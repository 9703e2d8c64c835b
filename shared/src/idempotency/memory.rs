//! An in-process idempotency store with the DynamoDB store's semantics, for tests and local
//! runs. It commits in-memory business writes ([`Write::in_memory`](super::Write::in_memory))
//! with the record, all or nothing; DynamoDB writes it refuses.

use std::collections::HashMap;
use std::sync::Mutex;

use super::record::existing_outcome;
use super::{
    Acquired, Claim, Committed, IdempotencyError, IdempotencyRecord, IdempotencyStore, Status,
    TransactionConflict, WriteRefused,
};

/// Records in a `HashMap` behind a mutex: every operation is atomic, like a conditional write.
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyStore {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
    /// Commits run one at a time, so their conditions and changes are one transaction.
    commits: Mutex<()>,
}

impl InMemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<IdempotencyRecord> {
        self.lock().ok()?.get(key).cloned()
    }

    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, IdempotencyRecord>>, IdempotencyError>
    {
        self.records.lock().map_err(|_| IdempotencyError::Store {
            message: "in-memory store poisoned by a panic".into(),
            retryable: false,
        })
    }

    fn put_if_free(
        &self,
        claim: &Claim,
        record: IdempotencyRecord,
    ) -> Result<Acquired, IdempotencyError> {
        let mut records = self.lock()?;
        if let Some(existing) = records.get(&claim.key).filter(|e| claim.is_blocked_by(e)) {
            return existing_outcome(claim, existing);
        }
        records.insert(claim.key.clone(), record);
        Ok(Acquired::Started)
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for InMemoryIdempotencyStore {
    async fn acquire(&self, claim: &Claim) -> Result<Acquired, IdempotencyError> {
        self.put_if_free(claim, claim.record(Status::InProgress, None))
    }

    async fn complete(&self, claim: &Claim, result: &str) -> Result<(), IdempotencyError> {
        let mut records = self.lock()?;
        let ours = records
            .get(&claim.key)
            .is_some_and(|r| r.owner.as_deref() == Some(claim.owner.as_str()));
        if !ours {
            return Err(IdempotencyError::ClaimLost {
                key: claim.key.clone(),
            });
        }
        records.insert(
            claim.key.clone(),
            claim.record(Status::Completed, Some(result)),
        );
        Ok(())
    }

    async fn release(&self, claim: &Claim) -> Result<(), IdempotencyError> {
        let mut records = self.lock()?;
        if records.get(&claim.key).is_some_and(|r| {
            r.status == Status::InProgress && r.owner.as_deref() == Some(claim.owner.as_str())
        }) {
            records.remove(&claim.key);
        }
        Ok(())
    }

    async fn commit(
        &self,
        claim: &Claim,
        result: &str,
        writes: Vec<super::Write>,
    ) -> Result<Committed, IdempotencyError> {
        let _one_at_a_time = self.commits.lock().map_err(|_| IdempotencyError::Store {
            message: "in-memory store poisoned by a panic".into(),
            retryable: false,
        })?;
        if writes.iter().any(|w| w.as_dynamodb().is_some()) {
            return Err(IdempotencyError::Unsupported);
        }
        match self.put_if_free(claim, claim.record(Status::Completed, Some(result)))? {
            Acquired::Started => {}
            taken => return Ok(Committed::AlreadyTaken(taken)),
        }
        let refused: Vec<WriteRefused> = writes
            .iter()
            .enumerate()
            .filter_map(|(index, write)| match write.check_in_memory() {
                Some(Err(reason)) => Some(WriteRefused {
                    index,
                    code: "ConditionalCheckFailed".into(),
                    message: Some(format!("{}: {reason}", write.describe())),
                    item: None,
                }),
                _ => None,
            })
            .collect();
        if !refused.is_empty() {
            // All or nothing: the record goes too, so a retry runs the handler again.
            self.lock()?.remove(&claim.key);
            return Err(IdempotencyError::Conflict(TransactionConflict { refused }));
        }
        for write in &writes {
            write.apply_in_memory();
        }
        Ok(Committed::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(owner: &str, now_ms: i64) -> Claim {
        Claim {
            owner: owner.into(),
            key: "k".into(),
            payload_hash: "h".into(),
            now_ms,
            expires_at: now_ms / 1000 + 60,
            in_progress_until: now_ms + 100,
        }
    }

    #[tokio::test]
    async fn in_memory_writes_commit_all_or_nothing_with_the_record() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let store = InMemoryIdempotencyStore::new();
        let applied = Arc::new(AtomicUsize::new(0));
        let counted = applied.clone();
        let ok = super::super::Write::in_memory(
            "ok",
            Arc::new(|| Ok(())),
            Arc::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let refused = super::super::Write::in_memory(
            "refused",
            Arc::new(|| Err("no".into())),
            Arc::new(|| {}),
        );
        let first = claim("a", 0);
        let err = store
            .commit(&first, "{}", vec![ok.clone(), refused])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, IdempotencyError::Conflict(t) if t.refused.len() == 1 && t.refused[0].index == 1),
            "{err:?}"
        );
        assert_eq!(applied.load(Ordering::SeqCst), 0, "nothing applied");
        assert!(store.get("k").is_none(), "the record rolled back too");
        assert!(matches!(
            store.commit(&first, "{}", vec![ok.clone()]).await.unwrap(),
            Committed::Written
        ));
        assert_eq!(applied.load(Ordering::SeqCst), 1);
        // A duplicate's commit finds the record and applies nothing.
        assert!(matches!(
            store.commit(&claim("b", 1), "{}", vec![ok]).await.unwrap(),
            Committed::AlreadyTaken(Acquired::Completed(_))
        ));
        assert_eq!(applied.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn only_the_current_holder_completes() {
        let store = InMemoryIdempotencyStore::new();
        let slow = claim("slow", 0);
        store.acquire(&slow).await.unwrap();
        let later = claim("later", 1_000);
        assert_eq!(store.acquire(&later).await.unwrap(), Acquired::Started);
        assert!(matches!(
            store.complete(&slow, "{}").await,
            Err(IdempotencyError::ClaimLost { .. })
        ));
        assert_eq!(store.get("k").unwrap().status, Status::InProgress);
        store.complete(&later, "{}").await.unwrap();
        assert_eq!(store.get("k").unwrap().status, Status::Completed);
    }
}
