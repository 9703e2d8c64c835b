//! What went through the proxy: requests by caller, service and operation, with what the
//! endpoint took to answer them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::operation::{Operation, Service};

/// Who made a request, what it was.
#[derive(Clone, Debug, Eq, Ord, PartialEq, PartialOrd)]
pub struct Key {
    /// The caller: a function's logical id, or `<Function> event source`, or `runner`.
    pub caller: String,
    /// The service.
    pub service: Service,
    /// The operation.
    pub operation: String,
}

/// The requests of one [`Key`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Requests.
    pub requests: u64,
    /// Requests answered with an error status, or not answered at all.
    pub failed: u64,
    /// Requests the proxy failed, slowed or answered itself (fault injection).
    pub injected: u64,
    /// Entries the requests carried (items of a transaction, entries of a batch; 1 a request
    /// otherwise).
    pub entries: u64,
    /// Messages `ReceiveMessage` answers held.
    pub messages: u64,
    /// `ReceiveMessage` answers without a message.
    pub empty: u64,
    /// Bytes of the requests' bodies.
    pub request_bytes: u64,
    /// Bytes of the answers' bodies.
    pub response_bytes: u64,
    /// Time the endpoint took, summed over the requests.
    pub upstream: Duration,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.injected += other.injected;
        self.entries += other.entries;
        self.messages += other.messages;
        self.empty += other.empty;
        self.request_bytes += other.request_bytes;
        self.response_bytes += other.response_bytes;
        self.upstream += other.upstream;
    }
}

/// Every request counted so far.
#[derive(Debug, Default)]
pub struct Tally {
    usage: Mutex<BTreeMap<Key, Usage>>,
    last_publish: Mutex<Option<Instant>>,
}

/// How one request went, as the proxy saw it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The answer's status (0: none).
    pub status: u16,
    /// Whether the proxy injected a fault into it.
    pub injected: bool,
    /// Messages received, for `ReceiveMessage`.
    pub messages: u64,
    /// Body sizes.
    pub request_bytes: u64,
    /// Body sizes.
    pub response_bytes: u64,
    /// What the endpoint took.
    pub upstream: Duration,
}

impl Tally {
    /// Counts one request of `caller`.
    pub fn count(&self, caller: &str, operation: &Operation, seen: &Seen) {
        let key = Key {
            caller: caller.to_owned(),
            service: operation.service,
            operation: operation.name.clone(),
        };
        let receive = operation.service == Service::Sqs && operation.name == "ReceiveMessage";
        let one = Usage {
            requests: 1,
            failed: u64::from(seen.status == 0 || seen.status >= 400),
            injected: u64::from(seen.injected),
            entries: operation.entries,
            messages: seen.messages,
            empty: u64::from(receive && seen.status == 200 && seen.messages == 0),
            request_bytes: seen.request_bytes,
            response_bytes: seen.response_bytes,
            upstream: seen.upstream,
        };
        self.usage.lock().entry(key).or_default().add(&one);
        if operation.service == Service::Sns
            && matches!(operation.name.as_str(), "Publish" | "PublishBatch")
        {
            // Whatever the answer: a lost answer may hide an accepted publish.
            *self.last_publish.lock() = Some(Instant::now());
        }
    }

    /// When a publish last went through the proxy: its deliveries to the subscribed
    /// queues may still be on their way (SNS hands messages to SQS asynchronously).
    pub fn last_publish(&self) -> Option<Instant> {
        *self.last_publish.lock()
    }

    /// Everything counted, by key.
    pub fn snapshot(&self) -> BTreeMap<Key, Usage> {
        self.usage.lock().clone()
    }

    /// Forgets everything counted (to measure a phase on its own).
    pub fn reset(&self) {
        self.usage.lock().clear();
    }
}

/// Sums `usage` by whatever `group` makes of each key.
pub fn group_by<K: Ord>(
    usage: &BTreeMap<Key, Usage>,
    group: impl Fn(&Key) -> Option<K>,
) -> BTreeMap<K, Usage> {
    let mut out: BTreeMap<K, Usage> = BTreeMap::new();
    for (key, one) in usage {
        if let Some(k) = group(key) {
            out.entry(k).or_default().add(one);
        }
    }
    out
}

/// A table of the requests by caller and service: `requests (failed)` in each cell.
pub fn render(usage: &BTreeMap<Key, Usage>) -> String {
    use std::fmt::Write;
    let services = [
        Service::DynamoDb,
        Service::DynamoDbStreams,
        Service::Sqs,
        Service::Sns,
    ];
    let by_caller = group_by(usage, |k| Some((k.caller.clone(), k.service)));
    let callers: std::collections::BTreeSet<&String> = by_caller.keys().map(|(c, _)| c).collect();
    let mut out = String::new();
    let _ = write!(out, "  {:<40}", "caller");
    for service in services {
        let _ = write!(out, " {:>16}", service.as_str());
    }
    out.push('\n');
    for caller in callers {
        let _ = write!(out, "  {caller:<40}");
        for service in services {
            let cell = match by_caller.get(&(caller.clone(), service)) {
                Some(u) if u.failed > 0 => format!("{} ({} failed)", u.requests, u.failed),
                Some(u) => u.requests.to_string(),
                None => "-".into(),
            };
            let _ = write!(out, " {cell:>16}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(service: Service, name: &str, entries: u64) -> Operation {
        Operation {
            service,
            name: name.into(),
            entries,
        }
    }

    #[test]
    fn requests_are_counted_by_caller_service_and_operation() {
        let tally = Tally::default();
        let receive = op(Service::Sqs, "ReceiveMessage", 1);
        let ok = |messages| Seen {
            status: 200,
            messages,
            ..Seen::default()
        };
        tally.count("PaymentFunction event source", &receive, &ok(3));
        tally.count("PaymentFunction event source", &receive, &ok(0));
        tally.count(
            "PaymentFunction",
            &op(Service::DynamoDb, "TransactWriteItems", 3),
            &Seen {
                status: 400,
                ..Seen::default()
            },
        );
        let usage = tally.snapshot();
        let receives = usage
            .iter()
            .find(|(k, _)| k.operation == "ReceiveMessage")
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        assert_eq!(
            (receives.requests, receives.messages, receives.empty),
            (2, 3, 1)
        );
        let table = render(&usage);
        assert!(
            table.contains("PaymentFunction event source") && table.contains("1 (1 failed)"),
            "{table}"
        );
        let by_service = group_by(&usage, |k| Some(k.service));
        assert_eq!(by_service[&Service::DynamoDb].entries, 3);
        assert_eq!(by_service[&Service::DynamoDb].failed, 1);
        tally.reset();
        assert!(tally.snapshot().is_empty());
    }

    #[test]
    fn a_publish_is_remembered_and_other_requests_are_not() {
        let tally = Tally::default();
        let ok = Seen {
            status: 200,
            ..Seen::default()
        };
        tally.count("OrdersFunction", &op(Service::Sqs, "SendMessage", 1), &ok);
        assert_eq!(tally.last_publish(), None);
        let before = Instant::now();
        tally.count("PaymentFunction", &op(Service::Sns, "PublishBatch", 2), &ok);
        assert!(tally.last_publish().is_some_and(|at| at >= before));
    }
}
