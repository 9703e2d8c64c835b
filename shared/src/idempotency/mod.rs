//! Idempotency: SQS and SNS deliver at least once; effects happen once.
//!
//! An [`IdempotencyStore`] keeps one record per key (`{function}#{eventId}` by default). Two
//! ways to use it, chosen per handler:
//!
//! - **acquire → run → complete** (Powertools' model), for handlers with outside effects
//!   (a payment gateway, an email): one conditional write claims the key (`INPROGRESS`, held
//!   until the Lambda deadline), the handler runs, a second write stores the result
//!   (`COMPLETED`). A handler error deletes the claim so a retry can run. A duplicate gets the
//!   stored result without running the handler; one arriving while the first is in progress is
//!   retried later.
//! - **commit** (one round trip), for handlers whose effect is DynamoDB writes: the handler
//!   returns its writes instead of making them, and the record (`COMPLETED`) and the writes go
//!   in ONE TransactWriteItems. A business condition failing rolls back the record too, and
//!   the typed cancellation reason comes back ([`TransactionConflict`]).
//!
//! Acquiring uses `ReturnValuesOnConditionCheckFailure=ALL_OLD`, so a duplicate costs no extra
//! read, and a record whose payload hash differs is a permanent [`IdempotencyError::PayloadMismatch`].

mod cache;
mod dynamo;
mod error;
mod in_flight;
mod memory;
mod record;
mod write;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub(crate) use cache::CompletedCache;
pub use dynamo::DynamoIdempotencyStore;
pub use error::{IdempotencyError, TransactionConflict, WriteRefused};
use in_flight::InFlight;
pub(crate) use in_flight::Turn;
pub use memory::InMemoryIdempotencyStore;
pub use record::{Acquired, Claim, Committed, IdempotencyRecord, Status};
pub use write::{Write, WriteChange, WriteCondition};

use crate::event::Event;

/// Where idempotency records live.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Claims `claim.key` with ONE conditional write: succeeds if the key is free, expired, or
    /// held by an invocation whose deadline passed; otherwise says who has it.
    async fn acquire(&self, claim: &Claim) -> Result<Acquired, IdempotencyError>;

    /// Marks the claimed key completed with the handler's `result`.
    async fn complete(&self, claim: &Claim, result: &str) -> Result<(), IdempotencyError>;

    /// Gives up an in-progress claim (the handler failed) so a retry can run.
    async fn release(&self, claim: &Claim) -> Result<(), IdempotencyError>;

    /// Writes the record as completed together with `writes`, atomically: all or nothing.
    async fn commit(
        &self,
        claim: &Claim,
        result: &str,
        writes: Vec<Write>,
    ) -> Result<Committed, IdempotencyError>;
}

/// How long a completed record counts by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 24 * 3600);

/// How a consumer derives the key's variable part from an event (the default: its `eventId`).
pub(crate) type KeyFn = Arc<dyn Fn(&Event) -> String + Send + Sync>;

/// The idempotency settings of one consumer: store, record lifetime, key and optional cache.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    key_fn: KeyFn,
    cache: Option<Arc<CompletedCache>>,
    in_flight: Arc<InFlight>,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    /// Records kept 15 days, keyed by `eventId`, no cache.
    ///
    /// 15 days: longer than a message can wait in a DLQ (14 days), so a message moved back
    /// after a fix that did complete once is recognised, not applied again.
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Idempotency {
            store,
            ttl: DEFAULT_TTL,
            key_fn: Arc::new(|e| e.event_id.to_string()),
            cache: None,
            in_flight: Arc::default(),
        }
    }

    /// How long a completed record counts (the table's TTL removes it later).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Derives the key's variable part from the event (the function name is always prefixed).
    pub fn with_key(mut self, key_fn: impl Fn(&Event) -> String + Send + Sync + 'static) -> Self {
        self.key_fn = Arc::new(key_fn);
        self
    }

    /// Keeps up to `capacity` completed keys in memory per execution environment.
    pub fn with_cache(mut self, capacity: std::num::NonZeroUsize) -> Self {
        self.cache = Some(Arc::new(CompletedCache::new(capacity)));
        self
    }

    /// The store.
    pub fn store(&self) -> &dyn IdempotencyStore {
        self.store.as_ref()
    }

    /// The claim `function` makes for `event`, holding the key until `deadline` at most.
    pub(crate) fn claim(
        &self,
        function: &str,
        event: &Event,
        deadline: Option<SystemTime>,
    ) -> Claim {
        let now = SystemTime::now();
        let now_ms = epoch_ms(now);
        // Without a Lambda deadline (tests, local runs) the hold lasts one minute.
        let until = deadline.map(epoch_ms).unwrap_or(now_ms + 60_000);
        Claim {
            // Only needs to tell this claim from another's: a thread-local generator, not a
            // getrandom syscall per record (`make bench`).
            owner: uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
                .into_uuid()
                .to_string(),
            key: format!("{function}#{}", (self.key_fn)(event)),
            payload_hash: payload_hash(event),
            now_ms,
            expires_at: (now_ms / 1000) + self.ttl.as_secs() as i64,
            in_progress_until: until,
        }
    }

    /// Waits until no other record of this environment is handling `claim`'s key, then holds
    /// it until the returned turn is dropped: copies of one event in one batch run one after
    /// the other, the later ones finding the first's outcome.
    pub(crate) async fn turn(&self, claim: &Claim) -> Turn<'_> {
        self.in_flight.turn(&claim.key).await
    }

    /// The cached result of a completed claim, if this environment completed it itself.
    pub(crate) fn cached(&self, claim: &Claim) -> Option<String> {
        self.cache
            .as_ref()?
            .get(&claim.key, &claim.payload_hash, claim.now_ms / 1000)
    }

    /// Remembers a completed claim in the cache, if there is one.
    pub(crate) fn remember(&self, claim: &Claim, result: &str) {
        if let Some(cache) = &self.cache {
            cache.put(&claim.key, &claim.payload_hash, result, claim.expires_at);
        }
    }
}

/// SHA-256 (hex) of the event's identity: its type and the required fields of its payload,
/// canonical (see the event module's identity rules).
///
/// Envelope metadata (occurredAt, correlation) is left out: a re-published event with the
/// same id and the same data is the same event. So are JSON formatting, key order, unknown
/// fields, a decimal's spelling (`12.5` or `"12.50"`), the version it was written at (a v1
/// event is upcast first) and optional fields, which writers may add without a new version.
pub fn payload_hash(event: &Event) -> String {
    struct Hasher(Sha256);
    impl crate::event::IdentitySink for Hasher {
        fn field(&mut self, path: &'static str, value: &str) {
            // Length-prefixed, so no two different field lists write the same bytes.
            self.0.update((path.len() as u32).to_le_bytes());
            self.0.update(path.as_bytes());
            self.0.update((value.len() as u32).to_le_bytes());
            self.0.update(value.as_bytes());
        }
    }
    let mut hasher = Hasher(Sha256::new());
    crate::event::visit_identity(&event.payload, &mut hasher);
    let digest = hasher.0.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventPayload, examples};

    #[test]
    fn hash_ignores_envelope_metadata_but_not_data() {
        let event = examples::order_placed();
        let mut later = event.clone();
        later.occurred_at += chrono::Duration::seconds(5);
        later.source = "other".into();
        assert_eq!(payload_hash(&event), payload_hash(&later));
        let mut changed = event.clone();
        if let EventPayload::OrderPlaced(order) = &mut changed.payload {
            order.customer_id = "someone-else".into();
        }
        assert_ne!(payload_hash(&event), payload_hash(&changed));
        assert_eq!(payload_hash(&event).len(), 64);
    }

    #[test]
    fn hash_ignores_decimal_spelling_optional_fields_and_unknown_fields() {
        let event = examples::order_placed();
        let json = serde_json::to_value(&event).unwrap();
        // The same amounts spelled as JSON numbers, one with trailing zeros dropped.
        let mut respelled = json.clone();
        respelled["data"]["items"][0]["unitPrice"] = serde_json::json!(12.5);
        respelled["data"]["total"] = serde_json::json!("40.480");
        // A field this reader does not know, and an optional field dropped.
        respelled["data"]["giftWrap"] = serde_json::json!(true);
        respelled["data"]
            .as_object_mut()
            .unwrap()
            .remove("customerEmail");
        let respelled = Event::from_value(respelled).unwrap();
        assert_eq!(payload_hash(&event), payload_hash(&respelled));
        // What a required field holds still counts.
        let mut other = json;
        other["data"]["items"][0]["quantity"] = serde_json::json!(3);
        other["data"]["total"] = serde_json::json!("52.98");
        assert_ne!(
            payload_hash(&event),
            payload_hash(&Event::from_value(other).unwrap())
        );
    }

    #[test]
    fn claim_keys_by_function_and_event_id_and_holds_until_the_deadline() {
        let event = examples::order_placed();
        let idempotency = Idempotency::new(Arc::new(InMemoryIdempotencyStore::new()));
        let deadline = SystemTime::now() + Duration::from_secs(30);
        let claim = idempotency.claim("payment", &event, Some(deadline));
        assert_eq!(claim.key, format!("payment#{}", event.event_id));
        assert_eq!(claim.in_progress_until, epoch_ms(deadline));
        assert!(claim.expires_at > claim.now_ms / 1000 + 15 * 24 * 3600 - 5);
        let by_order = idempotency
            .with_key(|e| e.aggregate_id.clone())
            .claim("payment", &event, None);
        assert_eq!(by_order.key, "payment#ord-1001");
    }

    #[tokio::test]
    async fn in_memory_store_runs_the_lifecycle() {
        let store = InMemoryIdempotencyStore::new();
        let claim = |now_ms: i64, hash: &str| Claim {
            owner: format!("invocation-{now_ms}"),
            key: "k".into(),
            payload_hash: hash.into(),
            now_ms,
            expires_at: now_ms / 1000 + 60,
            in_progress_until: now_ms + 1_000,
        };
        assert_eq!(
            store.acquire(&claim(0, "h")).await.unwrap(),
            Acquired::Started
        );
        assert_eq!(
            store.acquire(&claim(10, "h")).await.unwrap(),
            Acquired::InProgress { until_ms: 1_000 }
        );
        assert!(matches!(
            store.acquire(&claim(10, "x")).await,
            Err(IdempotencyError::PayloadMismatch { .. })
        ));
        // A crashed holder: its deadline passed, the next attempt takes over.
        assert_eq!(
            store.acquire(&claim(2_000, "h")).await.unwrap(),
            Acquired::Started
        );
        store
            .complete(&claim(2_000, "h"), "{\"ok\":1}")
            .await
            .unwrap();
        assert_eq!(
            store.acquire(&claim(3_000, "h")).await.unwrap(),
            Acquired::Completed("{\"ok\":1}".into())
        );
        store.release(&claim(3_000, "h")).await.unwrap();
        assert_eq!(
            store.get("k").unwrap().status,
            Status::Completed,
            "release never removes a completed record"
        );
        // Expired: processed again.
        assert_eq!(
            store.acquire(&claim(70_000, "h")).await.unwrap(),
            Acquired::Started
        );
        assert_eq!(
            store
                .commit(&claim(70_001, "h"), "{}", vec![])
                .await
                .unwrap(),
            Committed::AlreadyTaken(Acquired::InProgress { until_ms: 71_000 })
        );
    }
}
