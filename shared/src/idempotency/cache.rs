//! A per-execution-environment LRU of completed keys: a warm Lambda that sees a duplicate it
//! completed itself answers without a DynamoDB request.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// A completed key's payload hash, stored result and expiry (epoch seconds).
#[derive(Clone, Debug)]
struct Entry {
    payload_hash: String,
    result: String,
    expires_at: i64,
}

/// Completed keys, most recently used kept, up to a capacity.
#[derive(Debug)]
pub(crate) struct CompletedCache {
    entries: Mutex<LruCache<String, Entry>>,
}

impl CompletedCache {
    /// A cache holding up to `capacity` keys.
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        CompletedCache {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The stored result of `key` if it completed with this payload and has not expired.
    pub(crate) fn get(&self, key: &str, payload_hash: &str, now_s: i64) -> Option<String> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some(e) if e.expires_at >= now_s && e.payload_hash == payload_hash => {
                Some(e.result.clone())
            }
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Remembers a completed key.
    pub(crate) fn put(&self, key: &str, payload_hash: &str, result: &str, expires_at: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(
                key.to_owned(),
                Entry {
                    payload_hash: payload_hash.to_owned(),
                    result: result.to_owned(),
                    expires_at,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_live_entries_with_the_same_payload() {
        let cache = CompletedCache::new(NonZeroUsize::new(2).unwrap());
        cache.put("a", "h", "{}", 100);
        assert_eq!(cache.get("a", "h", 100).as_deref(), Some("{}"));
        assert_eq!(
            cache.get("a", "other", 100),
            None,
            "a mismatch goes to the store, which reports it"
        );
        cache.put("a", "h", "{}", 100);
        assert_eq!(cache.get("a", "h", 101), None, "expired");
        cache.put("b", "h", "1", 100);
        cache.put("c", "h", "2", 100);
        cache.put("d", "h", "3", 100);
        assert_eq!(
            cache.get("b", "h", 0),
            None,
            "evicted as least recently used"
        );
    }
}
