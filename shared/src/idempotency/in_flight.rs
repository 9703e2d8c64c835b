//! Keys being handled in this execution environment right now: copies of one event in one
//! batch (SNS and a relay may both deliver twice) take turns instead of racing.
//!
//! Without it, two copies in one batch both reach the store at once; one wins, the other meets
//! the winner's hold (`InProgress`) and goes back to the queue. That costs a receive each time,
//! and when the copies have already used their receives (a duplicate that waited for an event
//! it depends on), the queue's redrive policy moves an event that was applied to the DLQ. Taking
//! turns, the later copy starts after the first finished and finds its outcome (the cache, or
//! the store's completed record): a duplicate, acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// One lock per key in use, dropped with its last user.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// This environment's turn on a key; the next copy's turn starts when it is dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    in_flight: &'a InFlight,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl InFlight {
    /// Waits until no other task of this environment handles `key`, then holds it.
    pub(crate) async fn turn(&self, key: &str) -> Turn<'_> {
        let lock = match self.keys.lock() {
            Ok(mut keys) => Some(keys.entry(key.to_owned()).or_default().clone()),
            // A panic while the map was locked: taking turns is an optimisation (the store
            // still decides who applies), so go on without it.
            Err(_) => None,
        };
        let guard = match lock {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        };
        Turn {
            in_flight: self,
            key: key.to_owned(),
            guard,
        }
    }

    /// How many keys are held or waited for (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.lock().map(|keys| keys.len()).unwrap_or(0)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        // Release first, then forget the key if nobody else holds or waits for it: a waiter
        // holds a clone of the lock, so a count of one is the map's own.
        if self.guard.take().is_none() {
            return;
        }
        if let Ok(mut keys) = self.in_flight.keys.lock()
            && keys
                .get(&self.key)
                .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_second_turn_on_a_key_waits_for_the_first_and_other_keys_do_not() {
        let in_flight = InFlight::default();
        let first = in_flight.turn("payment#e1").await;
        // Another key is free at once.
        let other = tokio::time::timeout(Duration::from_millis(50), in_flight.turn("payment#e2"))
            .await
            .expect("another key does not wait");
        drop(other);
        // The same key waits while the first turn lasts...
        let second = in_flight.turn("payment#e1");
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "the second copy must wait for the first"
        );
        // ...and goes on once it ends.
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), second)
            .await
            .expect("the second copy runs once the first is done");
        drop(second);
        assert_eq!(in_flight.len(), 0, "finished keys are forgotten");
    }
}
