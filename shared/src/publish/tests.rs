//! Publisher behaviour without a network: a replay client answers with canned SNS responses
//! and records the exact requests.

use std::time::Duration;

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;

use super::*;
use crate::event::{EventPayload, examples};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders";
const FIFO_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders.fifo";

fn publisher(topic: &str, responses: Vec<(u16, String)>) -> (Publisher, StaticReplayClient) {
    let events = responses
        .into_iter()
        .map(|(status, body)| {
            let request = http::Request::builder()
                .uri("https://sns.us-east-1.amazonaws.com/")
                .body(SdkBody::empty())
                .unwrap();
            let response = http::Response::builder()
                .status(status)
                .body(SdkBody::from(body))
                .unwrap();
            ReplayEvent::new(request, response)
        })
        .collect();
    let http_client = StaticReplayClient::new(events);
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        // The SDK's own retries are off so each canned response answers exactly one request.
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .http_client(http_client.clone())
        .build();
    let retry = RetryPolicy {
        max_attempts: 3,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    };
    (
        Publisher::new(aws_sdk_sns::Client::from_conf(config), topic).with_retry_policy(retry),
        http_client,
    )
}

fn batch_response(ok: &[usize], failed: &[(usize, &str, bool)]) -> (u16, String) {
    let ok: String = ok
        .iter()
        .map(|i| format!("<member><Id>e{i}</Id><MessageId>msg-{i}</MessageId></member>"))
        .collect();
    let failed: String = failed
        .iter()
        .map(|(i, code, sender)| {
            format!("<member><Id>e{i}</Id><Code>{code}</Code><Message>{code} for e{i}</Message><SenderFault>{sender}</SenderFault></member>")
        })
        .collect();
    (
        200,
        format!(
            "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
             <Successful>{ok}</Successful><Failed>{failed}</Failed></PublishBatchResult>\
             <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>"
        ),
    )
}

fn error_response(status: u16, code: &str) -> (u16, String) {
    (
        status,
        format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>{code} happened</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        ),
    )
}

/// The form parameters of every request the client sent.
fn sent_forms(client: &StaticReplayClient) -> Vec<Vec<(String, String)>> {
    client
        .actual_requests()
        .map(|request| {
            let body = std::str::from_utf8(request.body().bytes().unwrap())
                .unwrap()
                .to_owned();
            body.split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn param<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The entry ids of one PublishBatch request, in order.
fn entry_ids(form: &[(String, String)]) -> Vec<String> {
    (1..)
        .map_while(|n| {
            param(form, &format!("PublishBatchRequestEntries.member.{n}.Id")).map(str::to_owned)
        })
        .collect()
}

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|_| examples::order_placed()).collect()
}

#[tokio::test]
async fn publish_sets_attributes_and_no_fifo_ids_on_a_standard_topic() {
    let (publisher, client) = publisher(
        TOPIC,
        vec![(200, "<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>".into())],
    );
    let event = examples::order_placed();
    let published = publisher.publish(&event).await.unwrap();
    assert_eq!(
        published,
        Published {
            event_id: event.event_id,
            message_id: "m-1".into(),
            sequence_number: None
        }
    );

    let form = &sent_forms(&client)[0];
    assert_eq!(param(form, "Action"), Some("Publish"));
    assert_eq!(param(form, "TopicArn"), Some(TOPIC));
    assert_eq!(
        Event::decode(param(form, "Message").unwrap().as_bytes()).unwrap(),
        event
    );
    let attributes: Vec<(&str, &str, &str)> = (1..=3)
        .map(|n| {
            let at = |f: &str| param(form, &format!("MessageAttributes.entry.{n}.{f}")).unwrap();
            (at("Name"), at("Value.DataType"), at("Value.StringValue"))
        })
        .collect();
    let correlation = event.correlation_id.as_str();
    for expected in [
        ("eventType", "String", "OrderPlaced"),
        ("eventVersion", "Number", "2"),
        ("correlationId", "String", correlation),
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected:?} not in {attributes:?}"
        );
    }
    assert_eq!(param(form, "MessageGroupId"), None);
    assert_eq!(param(form, "MessageDeduplicationId"), None);
}

#[tokio::test]
async fn publish_on_fifo_topic_groups_by_aggregate_and_dedups_by_event_id() {
    let (publisher, client) = publisher(
        FIFO_TOPIC,
        vec![(200, "<PublishResponse><PublishResult><MessageId>m-1</MessageId><SequenceNumber>1</SequenceNumber></PublishResult></PublishResponse>".into())],
    );
    let event = examples::order_placed();
    let published = publisher.publish(&event).await.unwrap();
    assert_eq!(published.sequence_number.as_deref(), Some("1"));
    let form = &sent_forms(&client)[0];
    assert_eq!(param(form, "MessageGroupId"), Some("ord-1001"));
    assert_eq!(
        param(form, "MessageDeduplicationId"),
        Some(event.event_id.to_string().as_str())
    );
}

#[tokio::test]
async fn publish_retries_throttling_then_succeeds() {
    let (publisher, client) = publisher(
        TOPIC,
        vec![
            error_response(400, "Throttling"),
            (200, "<PublishResponse><PublishResult><MessageId>m-2</MessageId></PublishResult></PublishResponse>".into()),
        ],
    );
    assert_eq!(
        publisher
            .publish(&examples::order_placed())
            .await
            .unwrap()
            .message_id,
        "m-2"
    );
    assert_eq!(client.actual_requests().count(), 2);
}

#[tokio::test]
async fn publish_does_not_retry_a_permanent_rejection() {
    let (publisher, client) = publisher(TOPIC, vec![error_response(404, "NotFound")]);
    let err = publisher
        .publish(&examples::order_placed())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PublishError::Rejected { code, attempts: 1, retryable: false, .. } if code == "NotFound"),
        "{err}"
    );
    assert_eq!(client.actual_requests().count(), 1);
}

#[tokio::test]
async fn invalid_events_never_reach_the_network() {
    let (publisher, client) = publisher(TOPIC, vec![]);
    let mut event = examples::order_placed();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.items.clear();
    }
    let err = publisher.publish(&event).await.unwrap_err();
    assert!(matches!(err, PublishError::Invalid { .. }), "{err}");
    let report = publisher.publish_batch(&[event]).await;
    assert!(matches!(
        report.results[0],
        Err(PublishError::Invalid { .. })
    ));
    assert_eq!(report.requests, 0);
    assert_eq!(client.actual_requests().count(), 0);
}

#[tokio::test]
async fn batch_of_25_goes_out_in_requests_of_10_10_5() {
    let (publisher, client) = publisher(
        TOPIC,
        vec![
            batch_response(&(0..10).collect::<Vec<_>>(), &[]),
            batch_response(&(10..20).collect::<Vec<_>>(), &[]),
            batch_response(&(20..25).collect::<Vec<_>>(), &[]),
        ],
    );
    let input = events(25);
    let report = publisher.publish_batch(&input).await;
    assert!(report.is_complete());
    assert_eq!(report.requests, 3);
    let forms = sent_forms(&client);
    let sizes: Vec<usize> = forms.iter().map(|f| entry_ids(f).len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(entry_ids(&forms[2]), ["e20", "e21", "e22", "e23", "e24"]);
    for (i, result) in report.results.iter().enumerate() {
        let published = result.as_ref().unwrap();
        assert_eq!(published.event_id, input[i].event_id);
        assert_eq!(published.message_id, format!("msg-{i}"));
    }
}

#[tokio::test]
async fn only_failed_retryable_entries_are_sent_again() {
    // GIVEN SNS fails e3 with an internal error (retryable) and e5 as the sender's fault
    let (publisher, client) = publisher(
        TOPIC,
        vec![
            batch_response(
                &[0, 1, 2, 4, 6],
                &[(3, "InternalError", false), (5, "InvalidParameter", true)],
            ),
            batch_response(&[3], &[]),
        ],
    );
    // WHEN a batch of 7 is published
    let report = publisher.publish_batch(&events(7)).await;
    // THEN e3 is retried alone and succeeds; e5 is reported once, by its event id
    let forms = sent_forms(&client);
    assert_eq!(forms.len(), 2);
    assert_eq!(entry_ids(&forms[1]), ["e3"]);
    assert_eq!(report.published().count(), 6);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    assert!(
        matches!(failures[0], PublishError::Rejected { code, retryable: false, attempts: 1, .. } if code == "InvalidParameter")
    );
    assert!(report.results[5].is_err());
    assert_eq!(report.results[3].as_ref().unwrap().message_id, "msg-3");
}

#[tokio::test]
async fn retryable_failures_stop_after_max_attempts() {
    let (publisher, client) = publisher(
        TOPIC,
        vec![
            batch_response(&[0], &[(1, "Throttled", true)]),
            batch_response(&[], &[(1, "Throttled", true)]),
            batch_response(&[], &[(1, "Throttled", true)]),
        ],
    );
    let report = publisher.publish_batch(&events(2)).await;
    assert_eq!(client.actual_requests().count(), 3);
    assert!(
        matches!(
            &report.results[1],
            Err(PublishError::Rejected {
                attempts: 3,
                retryable: true,
                ..
            })
        ),
        "{:?}",
        report.results[1]
    );
}

#[tokio::test]
async fn a_throttled_request_is_sent_again_whole() {
    let (publisher, client) = publisher(
        TOPIC,
        vec![
            error_response(400, "Throttling"),
            batch_response(&[0, 1, 2], &[]),
        ],
    );
    let report = publisher.publish_batch(&events(3)).await;
    assert!(report.is_complete());
    let forms = sent_forms(&client);
    assert_eq!(entry_ids(&forms[0]), entry_ids(&forms[1]));
}

#[tokio::test]
async fn an_oversized_request_rejected_whole_is_reported_for_every_entry() {
    // AWS and LocalStack answer BatchRequestTooLong for the whole request; nothing to retry.
    let (publisher, _client) = publisher(TOPIC, vec![error_response(400, "BatchRequestTooLong")]);
    let report = publisher.publish_batch(&events(2)).await;
    for result in &report.results {
        assert!(
            matches!(result, Err(PublishError::Rejected { code, retryable: false, .. }) if code == "BatchRequestTooLong")
        );
    }
}

/// `n` events on a FIFO topic alternating between orders A (even indexes) and B (odd).
fn alternating_orders(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut event = examples::order_placed();
            let order_id = if i % 2 == 0 { "ord-A" } else { "ord-B" };
            event.aggregate_id = order_id.into();
            if let EventPayload::OrderPlaced(order) = &mut event.payload {
                order.order_id = order_id.into();
            }
            event
        })
        .collect()
}

#[tokio::test]
async fn a_fifo_request_carries_one_entry_per_message_group() {
    let (publisher, client) = publisher(
        FIFO_TOPIC,
        vec![batch_response(&[0, 1], &[]), batch_response(&[2, 3], &[])],
    );
    let report = publisher.publish_batch(&alternating_orders(4)).await;
    assert!(report.is_complete());
    let forms = sent_forms(&client);
    assert_eq!(entry_ids(&forms[0]), ["e0", "e1"]);
    assert_eq!(entry_ids(&forms[1]), ["e2", "e3"]);
    assert_eq!(
        param(
            &forms[1],
            "PublishBatchRequestEntries.member.1.MessageGroupId"
        ),
        Some("ord-A")
    );
}

#[tokio::test]
async fn a_fifo_group_waits_behind_its_retryable_failure() {
    let (publisher, client) = publisher(
        FIFO_TOPIC,
        vec![
            // WHEN e0 (order A) fails for a retryable reason in the first request
            batch_response(&[1], &[(0, "InternalError", false)]),
            batch_response(&[3], &[]),
            batch_response(&[0], &[]),
            batch_response(&[2], &[]),
        ],
    );
    let report = publisher.publish_batch(&alternating_orders(4)).await;
    assert!(report.is_complete(), "{:?}", report.results);
    // THEN e2 (order A) is held back from the second request and follows e0's retry
    let forms = sent_forms(&client);
    let requests: Vec<Vec<String>> = forms.iter().map(|f| entry_ids(f)).collect();
    assert_eq!(
        requests,
        [vec!["e0", "e1"], vec!["e3"], vec!["e0"], vec!["e2"]]
    );
}

#[tokio::test]
async fn a_fifo_entry_that_fails_for_good_holds_back_every_later_entry_of_its_group() {
    // GIVEN six events alternating between orders A and B on a FIFO topic
    let input = alternating_orders(6);
    let (publisher, client) = publisher(
        FIFO_TOPIC,
        vec![
            // WHEN e0 (order A) is rejected for good
            batch_response(&[1], &[(0, "InvalidParameter", true)]),
            batch_response(&[3], &[]),
            batch_response(&[5], &[]),
        ],
    );
    let report = publisher.publish_batch(&input).await;
    // THEN A's later events are never sent and are reported held back behind e0; B's go out
    let sent: Vec<Vec<String>> = sent_forms(&client).iter().map(|f| entry_ids(f)).collect();
    assert_eq!(sent, [vec!["e0", "e1"], vec!["e3"], vec!["e5"]]);
    for i in [2, 4] {
        assert!(
            matches!(&report.results[i], Err(PublishError::HeldBack { behind, retryable: false, .. }) if *behind == input[0].event_id),
            "{i}: {:?}",
            report.results[i]
        );
    }
    assert!(report.results[0].is_err());
    assert!([1, 3, 5].iter().all(|i| report.results[*i].is_ok()));
}

#[tokio::test]
async fn a_fifo_entry_out_of_attempts_holds_back_its_group_too() {
    let input = alternating_orders(3);
    let (publisher, client) = publisher(
        FIFO_TOPIC,
        vec![
            batch_response(&[1], &[(0, "Throttled", true)]),
            batch_response(&[], &[(0, "Throttled", true)]),
            batch_response(&[], &[(0, "Throttled", true)]),
        ],
    );
    let report = publisher.publish_batch(&input).await;
    // Three attempts of e0 (the policy's maximum); e2, behind it, is never sent.
    let sent: Vec<Vec<String>> = sent_forms(&client).iter().map(|f| entry_ids(f)).collect();
    assert_eq!(sent, [vec!["e0", "e1"], vec!["e0"], vec!["e0"]]);
    assert!(
        matches!(
            &report.results[0],
            Err(PublishError::Rejected {
                attempts: 3,
                retryable: true,
                ..
            })
        ),
        "{:?}",
        report.results[0]
    );
    assert!(matches!(
        &report.results[2],
        Err(PublishError::HeldBack {
            retryable: true,
            ..
        })
    ));
}

#[tokio::test]
async fn encoded_events_are_published_byte_for_byte_with_their_own_attributes() {
    // A newer writer's event: a field this code does not know, a version it does not read.
    let body = r#"{"eventId":"0b8f2f7e-8f7e-4c55-9a51-8d6a3f7c1a10","eventType":"OrderPlaced","eventVersion":3,"occurredAt":"2026-11-23T10:00:00Z","aggregateId":"ord-9","correlationId":"corr-9","source":"orders","data":{"orderId":"ord-9","giftWrap":true}}"#;
    let encoded = EncodedEvent::from_json(body.to_owned()).unwrap();
    assert_eq!(encoded.event_version, 3);
    let (publisher, client) = publisher(TOPIC, vec![batch_response(&[0], &[])]);
    let report = publisher.publish_encoded(&[encoded]).await;
    assert!(report.is_complete());
    let form = &sent_forms(&client)[0];
    assert_eq!(
        param(form, "PublishBatchRequestEntries.member.1.Message"),
        Some(body)
    );
    let attributes: Vec<(&str, &str)> = (1..=3)
        .map(|n| {
            let at = |f: &str| {
                param(
                    form,
                    &format!("PublishBatchRequestEntries.member.1.MessageAttributes.entry.{n}.{f}"),
                )
                .unwrap()
            };
            (at("Name"), at("Value.StringValue"))
        })
        .collect();
    assert!(
        attributes.contains(&("eventVersion", "3")),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&("correlationId", "corr-9")),
        "{attributes:?}"
    );
    assert!(EncodedEvent::from_json("{\"eventId\": 1}".into()).is_err());
}
