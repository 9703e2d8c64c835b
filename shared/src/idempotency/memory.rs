//! An in-process idempotency store with the DynamoDB store's semantics, for tests and local
//! runs. It cannot commit business writes.

use std::collections::HashMap;
use std::sync::Mutex;

use super::record::existing_outcome;
use super::{
    Acquired, Claim, Committed, IdempotencyError, IdempotencyRecord, IdempotencyStore, Status,
};

/// Records in a `HashMap` behind a mutex: every operation is atomic, like a conditional write.
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyStore {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
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
        if !writes.is_empty() {
            return Err(IdempotencyError::Unsupported);
        }
        Ok(
            match self.put_if_free(claim, claim.record(Status::Completed, Some(result)))? {
                Acquired::Started => Committed::Written,
                taken => Committed::AlreadyTaken(taken),
            },
        )
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
