//! What an SDK request is: which service and which operation, read as the service itself
//! reads it (the `X-Amz-Target` header of the JSON protocols, the `Action` of the query
//! protocol, the signing scope of `Authorization`), and how many entries it carries.

use http::HeaderMap;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The services the functions and the runner call.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Service {
    /// Amazon DynamoDB.
    DynamoDb,
    /// DynamoDB Streams.
    DynamoDbStreams,
    /// Amazon SQS.
    Sqs,
    /// Amazon SNS.
    Sns,
    /// AWS STS.
    Sts,
    /// Anything else.
    Other,
}

impl Service {
    /// The service's name as the SDK's endpoint variables spell it
    /// (`AWS_ENDPOINT_URL_<suffix>`).
    pub fn endpoint_suffix(self) -> Option<&'static str> {
        match self {
            Service::DynamoDb => Some("DYNAMODB"),
            Service::DynamoDbStreams => Some("DYNAMODB_STREAMS"),
            Service::Sqs => Some("SQS"),
            Service::Sns => Some("SNS"),
            Service::Sts => Some("STS"),
            Service::Other => None,
        }
    }

    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::DynamoDb => "dynamodb",
            Service::DynamoDbStreams => "dynamodbstreams",
            Service::Sqs => "sqs",
            Service::Sns => "sns",
            Service::Sts => "sts",
            Service::Other => "other",
        }
    }

    /// Whether the service speaks the query protocol (form body in, XML out).
    pub fn is_query(self) -> bool {
        matches!(self, Service::Sns | Service::Sts)
    }
}

/// One request's service, operation and entry count.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Operation {
    /// The service.
    pub service: Service,
    /// The operation (`PutItem`, `ReceiveMessage`, `Publish`, …; `Unknown` if unreadable).
    pub name: String,
    /// Entries a batch operation carries (`TransactItems`, `Entries`,
    /// `PublishBatchRequestEntries`), 1 for the rest.
    pub entries: u64,
}

impl Operation {
    /// Reads a request's headers and body.
    pub fn of(headers: &HeaderMap, body: &[u8]) -> Operation {
        if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            let (prefix, name) = target.split_once('.').unwrap_or((target, "Unknown"));
            let service = match prefix {
                p if p.starts_with("DynamoDBStreams") => Service::DynamoDbStreams,
                p if p.starts_with("DynamoDB") => Service::DynamoDb,
                p if p.starts_with("AmazonSQS") => Service::Sqs,
                _ => Service::Other,
            };
            return Operation {
                service,
                name: name.to_owned(),
                entries: json_entries(service, name, body),
            };
        }
        let service = match signing_service(headers).as_deref() {
            Some("sns") => Service::Sns,
            Some("sts") => Service::Sts,
            Some("sqs") => Service::Sqs,
            Some("dynamodb") => Service::DynamoDb,
            _ => Service::Other,
        };
        let form = std::str::from_utf8(body).unwrap_or_default();
        let name = form_value(form, "Action").unwrap_or("Unknown").to_owned();
        let entries = match name.as_str() {
            "PublishBatch" => form_entries(form, "PublishBatchRequestEntries.member."),
            _ => 1,
        };
        Operation {
            service,
            name,
            entries,
        }
    }

    /// Whether the operation writes DynamoDB items (what write request units pay for).
    pub fn is_dynamodb_write(&self) -> bool {
        self.service == Service::DynamoDb
            && matches!(
                self.name.as_str(),
                "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
            )
    }

    /// Whether the operation reads DynamoDB items (what read request units pay for).
    pub fn is_dynamodb_read(&self) -> bool {
        self.service == Service::DynamoDb
            && matches!(
                self.name.as_str(),
                "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
            )
    }
}

/// The service named in the SigV4 credential scope (`Credential=AKID/date/region/<service>/aws4_request`).
fn signing_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_owned)
}

/// A value of an `application/x-www-form-urlencoded` body (names and the values looked up
/// here are plain words, so no decoding is needed).
fn form_value<'a>(form: &'a str, key: &str) -> Option<&'a str> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// How many distinct `<prefix>N.` members a form body has.
fn form_entries(form: &str, prefix: &str) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    for pair in form.split('&') {
        if let Some(rest) = pair.strip_prefix(prefix)
            && let Some((index, _)) = rest.split_once('.')
        {
            seen.insert(index);
        }
    }
    seen.len().max(1) as u64
}

#[derive(Deserialize)]
struct Batch {
    #[serde(rename = "TransactItems", alias = "Entries", default)]
    entries: Vec<IgnoredAny>,
}

/// Entries of a JSON-protocol batch request, 1 for anything else.
fn json_entries(service: Service, name: &str, body: &[u8]) -> u64 {
    let batch = match (service, name) {
        (Service::DynamoDb, "TransactWriteItems" | "TransactGetItems") => true,
        (Service::Sqs, n) => n.ends_with("Batch"),
        _ => false,
    };
    if !batch {
        return 1;
    }
    serde_json::from_slice::<Batch>(body)
        .map(|b| b.entries.len().max(1) as u64)
        .unwrap_or(1)
}

#[derive(Deserialize)]
struct Received {
    #[serde(rename = "Messages", default)]
    messages: Vec<IgnoredAny>,
}

/// Messages an SQS `ReceiveMessage` answer (JSON protocol) holds.
pub fn messages_received(response: &[u8]) -> u64 {
    serde_json::from_slice::<Received>(response)
        .map(|r| r.messages.len() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn json_protocol_requests_are_read_from_their_target() {
        let put = Operation::of(
            &headers(&[("x-amz-target", "DynamoDB_20120810.PutItem")]),
            b"{}",
        );
        assert_eq!(
            (put.service, put.name.as_str(), put.entries),
            (Service::DynamoDb, "PutItem", 1)
        );
        assert!(put.is_dynamodb_write() && !put.is_dynamodb_read());
        let transaction = Operation::of(
            &headers(&[("x-amz-target", "DynamoDB_20120810.TransactWriteItems")]),
            br#"{"TransactItems":[{"Put":{}},{"Update":{}},{"ConditionCheck":{}}]}"#,
        );
        assert_eq!(transaction.entries, 3);
        let records = Operation::of(
            &headers(&[("x-amz-target", "DynamoDBStreams_20120810.GetRecords")]),
            b"{}",
        );
        assert_eq!(records.service, Service::DynamoDbStreams);
        let delete = Operation::of(
            &headers(&[("x-amz-target", "AmazonSQS.DeleteMessageBatch")]),
            br#"{"QueueUrl":"q","Entries":[{"Id":"1"},{"Id":"2"}]}"#,
        );
        assert_eq!(
            (delete.service, delete.name.as_str(), delete.entries),
            (Service::Sqs, "DeleteMessageBatch", 2)
        );
    }

    #[test]
    fn query_protocol_requests_are_read_from_their_scope_and_action() {
        let auth = "AWS4-HMAC-SHA256 Credential=test/20261204/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=abc";
        let publish = Operation::of(
            &headers(&[("authorization", auth)]),
            b"Action=Publish&Version=2010-03-31&TopicArn=arn",
        );
        assert_eq!(
            (publish.service, publish.name.as_str(), publish.entries),
            (Service::Sns, "Publish", 1)
        );
        let batch = Operation::of(
            &headers(&[("authorization", auth)]),
            b"Action=PublishBatch&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=x&PublishBatchRequestEntries.member.2.Id=b",
        );
        assert_eq!((batch.name.as_str(), batch.entries), ("PublishBatch", 2));
        let unknown = Operation::of(&HeaderMap::new(), b"");
        assert_eq!(
            (unknown.service, unknown.name.as_str()),
            (Service::Other, "Unknown")
        );
    }

    #[test]
    fn received_messages_are_counted_from_the_answer() {
        assert_eq!(
            messages_received(br#"{"Messages":[{"MessageId":"a"},{"MessageId":"b"}]}"#),
            2
        );
        assert_eq!(messages_received(b"{}"), 0);
        assert_eq!(messages_received(b"not json"), 0);
    }
}
