//! Faults the proxy can inject, as the services produce them: throttling and server errors
//! answered in the service's own protocol (the SDK classifies and retries them as it would
//! AWS's), slow answers, and lost answers (the endpoint did the work, the caller hears an
//! error and cannot tell). Decided by a seeded generator, so a run can be repeated.
//!
//! The proxy only exists in the local runner: no deployed function can reach this code.

use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::operation::{Operation, Service};

/// A fault injected into one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answered at once, not forwarded, as the service throttles: DynamoDB's
    /// `ProvisionedThroughputExceededException`, SQS's `ThrottlingException`, SNS's
    /// `Throttling` (HTTP 400).
    Throttle,
    /// Answered at once, not forwarded: HTTP 500 `InternalFailure`.
    ServerError,
    /// Forwarded after waiting this long.
    Slow(Duration),
    /// Forwarded, and the endpoint's answer replaced by HTTP 500: the work happened, the
    /// caller does not know it did.
    LoseAnswer,
    /// Answered at once, not forwarded: HTTP 400 `AccessDeniedException`, as a role missing a
    /// permission is answered (a bad deploy). Retrying cannot help.
    Deny,
}

impl Fault {
    /// A short name for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::ServerError => "5xx",
            Fault::Slow(_) => "slow",
            Fault::LoseAnswer => "lost answer",
            Fault::Deny => "access denied",
        }
    }
}

/// Which requests a fault applies to, and how often.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Callers whose name contains this (`None`: every caller).
    pub caller: Option<String>,
    /// The service (`None`: every service).
    pub service: Option<Service>,
    /// The operations (empty: every operation).
    pub operations: Vec<String>,
    /// The share of matching requests that get the fault (0.0 – 1.0).
    pub probability: f64,
    /// The fault.
    pub fault: Fault,
}

impl FaultRule {
    fn matches(&self, caller: &str, operation: &Operation) -> bool {
        self.caller.as_deref().is_none_or(|c| caller.contains(c))
            && self.service.is_none_or(|s| s == operation.service)
            && (self.operations.is_empty() || self.operations.contains(&operation.name))
    }
}

/// The faults in force, and the seeded generator that decides them.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<fastrand::Rng>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::seeded(0)
    }
}

impl Faults {
    /// No fault yet; decisions drawn from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    /// Replaces the rules in force (an empty list: no faults).
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.rules.lock() = rules;
    }

    /// Reseeds the generator.
    pub fn reseed(&self, seed: u64) {
        *self.rng.lock() = fastrand::Rng::with_seed(seed);
    }

    /// The fault for this request, if any: the first rule that matches and whose draw falls
    /// under its probability.
    pub fn choose(&self, caller: &str, operation: &Operation) -> Option<Fault> {
        let rules = self.rules.lock();
        let mut rng = self.rng.lock();
        rules
            .iter()
            .filter(|rule| rule.matches(caller, operation))
            .find(|rule| rng.f64() < rule.probability)
            .map(|rule| rule.fault.clone())
    }
}

/// The answer a service gives to `fault` (a fault the proxy answers itself), in its protocol.
pub fn error_answer(service: Service, fault: &Fault) -> (u16, &'static str, Bytes) {
    let (status, code, message) = match (service, *fault == Fault::Throttle) {
        _ if *fault == Fault::Deny => (
            400,
            "AccessDeniedException",
            "User is not authorized to perform this action (injected by orderflow-local)",
        ),
        (Service::DynamoDb, true) => (
            400,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded (injected by orderflow-local)",
        ),
        (_, true) if service.is_query() => (
            400,
            "Throttling",
            "Rate exceeded (injected by orderflow-local)",
        ),
        (_, true) => (
            400,
            "ThrottlingException",
            "Rate exceeded (injected by orderflow-local)",
        ),
        (_, false) => (
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error (injected by orderflow-local)",
        ),
    };
    if service.is_query() {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            uuid::Uuid::new_v4()
        );
        (status, "text/xml", Bytes::from(body))
    } else {
        let body = serde_json::json!({ "__type": code, "message": message }).to_string();
        (status, "application/x-amz-json-1.0", Bytes::from(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(service: Service, name: &str) -> Operation {
        Operation {
            service,
            name: name.into(),
            entries: 1,
        }
    }

    #[test]
    fn a_rule_applies_to_its_callers_service_and_operations_at_its_rate() {
        let faults = Faults::seeded(7);
        faults.set(vec![FaultRule {
            caller: Some("Payment".into()),
            service: Some(Service::DynamoDb),
            operations: vec!["PutItem".into()],
            probability: 0.25,
            fault: Fault::Throttle,
        }]);
        let put = op(Service::DynamoDb, "PutItem");
        let hits = (0..4000)
            .filter(|_| faults.choose("PaymentFunction", &put).is_some())
            .count();
        assert!((800..1200).contains(&hits), "{hits} of 4000 at 25 %");
        for _ in 0..200 {
            assert_eq!(faults.choose("InventoryFunction", &put), None);
            assert_eq!(
                faults.choose("PaymentFunction", &op(Service::DynamoDb, "GetItem")),
                None
            );
            assert_eq!(
                faults.choose("PaymentFunction", &op(Service::Sqs, "PutItem")),
                None
            );
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let draw = |seed| {
            let faults = Faults::seeded(seed);
            faults.set(vec![FaultRule {
                caller: None,
                service: None,
                operations: vec![],
                probability: 0.5,
                fault: Fault::ServerError,
            }]);
            (0..64)
                .map(|_| faults.choose("x", &op(Service::Sns, "Publish")).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn errors_are_answered_in_each_services_protocol() {
        let (status, content_type, body) = error_answer(Service::DynamoDb, &Fault::Throttle);
        assert_eq!((status, content_type), (400, "application/x-amz-json-1.0"));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["__type"], "ProvisionedThroughputExceededException");
        let (status, content_type, body) = error_answer(Service::Sns, &Fault::ServerError);
        assert_eq!((status, content_type), (500, "text/xml"));
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("<Code>InternalFailure</Code>") && text.contains("Receiver"));
        let (_, _, body) = error_answer(Service::Sqs, &Fault::Throttle);
        assert!(String::from_utf8_lossy(&body).contains("ThrottlingException"));
        let (status, _, body) = error_answer(Service::DynamoDb, &Fault::Deny);
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("AccessDeniedException"));
    }
}
