//! The wiring a reviewer checks in `infra/template.yaml`, checked against the code itself.
//!
//! Nothing here is a copy of the template or of the code: each function is built by its own
//! `consumer(sdk, Config::from_vars(<the template's environment>))` with an offline SDK config,
//! which proves that the template sets every variable the function reads, and gives the event
//! types its handlers are registered for, which its subscription's filter policy must list.

// Test code: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use orderflow::consume::ConsumerOptions;
use orderflow::env::{FromVars, Vars};
use orderflow_tests::services;
use serde_yaml_ng::{Mapping, Value};

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn offline_sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .build()
}

/// `!Ref X` → `X`; `!GetAtt X.Attr` → `X.Attr`.
fn reference(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string(), tagged.value.as_str()?.to_owned())),
        _ => None,
    }
}

fn get_att(value: &Value) -> Option<String> {
    reference(value)
        .filter(|(tag, _)| tag == "!GetAtt")
        .map(|(_, target)| target)
}

fn is_ref_to(value: &Value, logical: &str) -> bool {
    reference(value).is_some_and(|(tag, target)| tag == "!Ref" && target == logical)
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .fold(value, |v, key| v.get(*key).unwrap_or(&Value::Null))
}

struct Template {
    root: Value,
}

impl Template {
    fn resources(&self) -> &Mapping {
        self.root["Resources"].as_mapping().unwrap()
    }

    fn resource(&self, logical: &str) -> &Value {
        self.root["Resources"]
            .get(logical)
            .unwrap_or_else(|| panic!("no resource {logical}"))
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (String, &'a Value)> + 'a {
        self.resources()
            .iter()
            .filter(move |(_, r)| r["Type"] == kind)
            .map(|(k, r)| (k.as_str().unwrap().to_owned(), r))
    }

    /// A function property, from the function or else from Globals.
    fn function_property(&self, function: &Value, name: &str) -> Value {
        let own = get(function, &["Properties", name]);
        if own.is_null() {
            get(&self.root, &["Globals", "Function", name]).clone()
        } else {
            own.clone()
        }
    }

    /// The function's environment, each `!Ref`/`!GetAtt` replaced by a placeholder value.
    fn environment(&self, function: &Value) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        for scope in [
            get(&self.root, &["Globals", "Function"]),
            get(function, &["Properties"]),
        ] {
            if let Some(map) = get(scope, &["Environment", "Variables"]).as_mapping() {
                for (k, v) in map {
                    let value = match (v, reference(v)) {
                        (Value::String(s), _) => s.clone(),
                        // A parameter: its default, which must then be a value the code accepts.
                        (_, Some((tag, target)))
                            if tag == "!Ref"
                                && !self.root["Parameters"][target.as_str()].is_null() =>
                        {
                            let default = &self.root["Parameters"][target.as_str()]["Default"];
                            default.as_str().map(str::to_owned).unwrap_or_else(|| {
                                format!("{}", default.as_u64().unwrap_or_default())
                            })
                        }
                        (_, Some((_, target))) => format!("{target}-from-template"),
                        _ => String::new(),
                    };
                    vars.insert(k.as_str().unwrap().to_owned(), value);
                }
            }
        }
        vars
    }
}

/// The consumer function `binary`, built from the template's environment by its registry entry.
fn handled_event_types(binary: &str, vars: &Vars) -> Vec<String> {
    let service = services::service(binary)
        .unwrap_or_else(|| panic!("{binary} is not in tests/src/services.rs's SERVICES"));
    let consumer = (service.build)(&offline_sdk(), vars, ConsumerOptions::default())
        .unwrap_or_else(|err| panic!("{binary} environment: {err}"));
    consumer
        .handled_event_types()
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect()
}

/// The template's table a function's variable `!Ref`s, as (hash key, range key, stream view).
fn table_behind(
    template: &Template,
    function: &Value,
    variable: &str,
) -> (String, Option<String>, Option<String>) {
    let own = get(
        function,
        &["Properties", "Environment", "Variables", variable],
    );
    let value = if own.is_null() {
        get(
            &template.root,
            &["Globals", "Function", "Environment", "Variables", variable],
        )
    } else {
        own
    };
    let (tag, logical) = reference(value).unwrap_or_else(|| panic!("{variable} is not a !Ref"));
    assert_eq!(tag, "!Ref", "{variable}");
    let table = template.resource(&logical);
    assert_eq!(
        table["Type"], "AWS::DynamoDB::Table",
        "{variable} -> {logical}"
    );
    let key = |kind: &str| {
        get(table, &["Properties", "KeySchema"])
            .as_sequence()
            .unwrap()
            .iter()
            .find(|k| k["KeyType"] == kind)
            .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
    };
    let stream = get(
        table,
        &["Properties", "StreamSpecification", "StreamViewType"],
    )
    .as_str()
    .map(str::to_owned);
    (key("HASH").unwrap(), key("RANGE"), stream)
}

#[test]
fn the_tests_registry_of_services_keys_each_table_as_the_template_does() {
    let template = Template { root: template() };
    let mut registered: BTreeSet<&str> = services::SERVICES.iter().map(|s| s.name).collect();
    for (logical, function) in template.of_type("AWS::Serverless::Function") {
        let binary = get(function, &["Metadata", "BuildProperties", "Binary"])
            .as_str()
            .unwrap();
        let Some(service) = services::service(binary) else {
            continue;
        };
        registered.remove(binary);
        for table in [&service.table, &services::IDEMPOTENCY_TABLE] {
            let (hash, range, stream) = table_behind(&template, function, table.variable);
            assert_eq!(hash, table.hash, "{logical} {}", table.variable);
            assert_eq!(
                range.as_deref(),
                table.range,
                "{logical} {}",
                table.variable
            );
            assert_eq!(
                stream.is_some(),
                table.stream,
                "{logical} {}",
                table.variable
            );
        }
    }
    assert!(
        registered.is_empty(),
        "registered but not in the template: {registered:?}"
    );
}

#[test]
fn every_function_crate_is_a_function_in_the_template_built_with_cargo_lambda() {
    let template = Template { root: template() };
    let crates: BTreeSet<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    let mut binaries = BTreeSet::new();
    for (logical, function) in template.of_type("AWS::Serverless::Function") {
        assert_eq!(
            get(function, &["Metadata", "BuildMethod"]),
            "rust-cargolambda",
            "{logical}"
        );
        let binary = get(function, &["Metadata", "BuildProperties", "Binary"])
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            template.function_property(function, "Runtime"),
            "provided.al2023",
            "{logical}"
        );
        assert_eq!(
            template.function_property(function, "Handler"),
            "bootstrap",
            "{logical}"
        );
        assert_eq!(
            template.function_property(function, "Architectures")[0],
            "arm64",
            "{logical}"
        );
        binaries.insert(binary);
    }
    assert_eq!(
        binaries, crates,
        "template functions vs crates in functions/"
    );
}

#[test]
fn every_consumer_has_queue_dlq_redrive_subscription_filter_policy_and_alarms() {
    let template = Template { root: template() };
    let mut checked = 0;
    for (logical, function) in template.of_type("AWS::Serverless::Function") {
        let binary = get(function, &["Metadata", "BuildProperties", "Binary"])
            .as_str()
            .unwrap();
        let events = get(function, &["Properties", "Events"])
            .as_mapping()
            .unwrap();
        let Some(sqs) = events.values().find(|e| e["Type"] == "SQS") else {
            continue;
        };
        checked += 1;

        // The environment is complete: the function's own Config reads everything it needs.
        let vars = Vars::from_map(template.environment(function));
        let handled = handled_event_types(binary, &vars);
        assert!(!handled.is_empty(), "{logical} handles nothing");

        // Event source: partial batch failures on, batching explicit, concurrency bounded.
        let source = get(sqs, &["Properties"]);
        assert!(
            source["FunctionResponseTypes"]
                .as_sequence()
                .unwrap()
                .contains(&Value::from("ReportBatchItemFailures")),
            "{logical}"
        );
        assert!(
            source["BatchSize"].as_u64().is_some(),
            "{logical}: BatchSize"
        );
        assert!(
            !source["MaximumBatchingWindowInSeconds"].is_null(),
            "{logical}: batching window"
        );
        assert!(
            !get(source, &["ScalingConfig", "MaximumConcurrency"]).is_null(),
            "{logical}: MaximumConcurrency"
        );

        // Its queue redrives to its own DLQ, which keeps messages 14 days.
        let queue_id = get_att(&source["Queue"])
            .expect("Queue: !GetAtt X.Arn")
            .trim_end_matches(".Arn")
            .to_owned();
        let queue = template.resource(&queue_id);
        assert_eq!(queue["Type"], "AWS::SQS::Queue");
        let redrive = get(queue, &["Properties", "RedrivePolicy"]);
        let dlq_id = get_att(&redrive["deadLetterTargetArn"])
            .expect("redrive target")
            .trim_end_matches(".Arn")
            .to_owned();
        assert!(
            is_ref_to(&redrive["maxReceiveCount"], "MaxReceiveCount"),
            "{logical}: maxReceiveCount is the parameter"
        );
        assert_ne!(dlq_id, queue_id);
        assert_eq!(
            get(
                template.resource(&dlq_id),
                &["Properties", "MessageRetentionPeriod"]
            )
            .as_u64(),
            Some(1_209_600),
            "{dlq_id}"
        );

        // Visibility timeout >= 6 x the function timeout + the batching window, as AWS advises.
        let timeout = template
            .function_property(function, "Timeout")
            .as_u64()
            .unwrap();
        let window = largest_number(&source["MaximumBatchingWindowInSeconds"]);
        let visibility = get(queue, &["Properties", "VisibilityTimeout"])
            .as_u64()
            .unwrap();
        assert!(
            visibility >= 6 * timeout + window,
            "{queue_id}: visibility {visibility}s < 6 x {timeout}s + {window}s"
        );

        // Its subscription: this topic, raw delivery, a filter policy listing exactly what the
        // code handles.
        let subscriptions: Vec<&Value> = template
            .of_type("AWS::SNS::Subscription")
            .map(|(_, s)| s)
            .filter(|s| {
                get_att(get(s, &["Properties", "Endpoint"]))
                    .is_some_and(|t| t == format!("{queue_id}.Arn"))
            })
            .collect();
        assert_eq!(
            subscriptions.len(),
            1,
            "{logical}: one subscription for {queue_id}"
        );
        let properties = get(subscriptions[0], &["Properties"]);
        assert!(
            is_ref_to(&properties["TopicArn"], "EventsTopic"),
            "{logical}"
        );
        assert_eq!(
            properties["RawMessageDelivery"],
            Value::Bool(true),
            "{logical}"
        );
        let mut filter: Vec<String> = get(properties, &["FilterPolicy", "eventType"])
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        filter.sort();
        let mut expected = handled.clone();
        expected.sort();
        assert_eq!(
            filter, expected,
            "{logical}: filter policy vs the handlers registered in functions/{binary}"
        );

        // Only the events topic may send to the queue.
        let allowed = template.of_type("AWS::SQS::QueuePolicy").any(|(_, p)| {
            get(p, &["Properties", "Queues"])
                .as_sequence()
                .is_some_and(|qs| qs.iter().any(|q| is_ref_to(q, &queue_id)))
                && get(p, &["Properties", "PolicyDocument", "Statement"])
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .all(|s| {
                        is_ref_to(
                            get(s, &["Condition", "ArnEquals", "aws:SourceArn"]),
                            "EventsTopic",
                        ) && get(s, &["Principal", "Service"]) == "sns.amazonaws.com"
                    })
        });
        assert!(
            allowed,
            "{logical}: a queue policy lets only EventsTopic send to {queue_id}"
        );

        // An alarm on its DLQ, and one on its queue's age, both to the alarm topic.
        let alarm_on = |queue: &str, metric: &str| {
            template.of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
                let p = get(a, &["Properties"]);
                p["MetricName"] == metric
                    && p["Dimensions"][0]["Name"] == "QueueName"
                    && get_att(&p["Dimensions"][0]["Value"])
                        .is_some_and(|t| t == format!("{queue}.QueueName"))
                    && p["AlarmActions"]
                        .as_sequence()
                        .is_some_and(|a| a.iter().any(|t| is_ref_to(t, "AlarmTopic")))
            })
        };
        assert!(
            alarm_on(&dlq_id, "ApproximateNumberOfMessagesVisible"),
            "{logical}: alarm on {dlq_id}"
        );
        assert!(
            alarm_on(&queue_id, "ApproximateAgeOfOldestMessage"),
            "{logical}: age alarm on {queue_id}"
        );

        // Its role touches only its own resources.
        let role_id = get_att(get(function, &["Properties", "Role"]))
            .expect("Role: !GetAtt")
            .trim_end_matches(".Arn")
            .to_owned();
        let mut own: BTreeSet<String> =
            [queue_id.clone(), dlq_id.clone(), "IdempotencyTable".into()].into();
        own.extend(get(function, &["Properties", "LoggingConfig", "LogGroup"]).as_tagged_target());
        for value in template
            .environment(function)
            .values()
            .filter(|v| v.ends_with("-from-template"))
        {
            own.insert(value.trim_end_matches("-from-template").to_owned());
        }
        if own.contains("EventsTopic") {
            own.insert("EncryptionKey".into());
        }
        assert_role_is_least_privilege(&template, &role_id, &own);
    }
    assert_eq!(checked, 5, "five consumers");
}

/// The largest number in a value (the batching window sits inside an `!If` for FIFO).
fn largest_number(value: &Value) -> u64 {
    match value {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::Sequence(items) => items.iter().map(largest_number).max().unwrap_or(0),
        Value::Tagged(tagged) => largest_number(&tagged.value),
        _ => 0,
    }
}

trait TaggedTarget {
    fn as_tagged_target(&self) -> Option<String>;
}

impl TaggedTarget for Value {
    fn as_tagged_target(&self) -> Option<String> {
        reference(self).map(|(_, target)| target.split('.').next().unwrap_or_default().to_owned())
    }
}

fn assert_role_is_least_privilege(template: &Template, role_id: &str, own: &BTreeSet<String>) {
    let role = template.resource(role_id);
    for policy in get(role, &["Properties", "Policies"])
        .as_sequence()
        .unwrap()
    {
        for statement in get(policy, &["PolicyDocument", "Statement"])
            .as_sequence()
            .unwrap()
        {
            let resources: Vec<&Value> = match &statement["Resource"] {
                Value::Sequence(items) => items.iter().collect(),
                other => vec![other],
            };
            for resource in resources {
                if resource == "*" {
                    let actions: Vec<&str> = statement["Action"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap())
                        .collect();
                    assert!(
                        actions.iter().all(|a| a.starts_with("xray:")),
                        "{role_id}: '*' only for X-Ray, not {actions:?}"
                    );
                    continue;
                }
                let target = resource
                    .as_tagged_target()
                    .unwrap_or_else(|| panic!("{role_id}: literal resource {resource:?}"));
                assert!(
                    own.contains(&target),
                    "{role_id} reaches {target}, which is not its own ({own:?})"
                );
            }
        }
    }
}

#[test]
fn the_outbox_relay_reads_the_orders_stream_with_partial_failures_and_a_failure_destination() {
    let template = Template { root: template() };
    let relay = template.resource("OutboxRelayFunction");
    let vars = Vars::from_map(template.environment(relay));
    outbox_relay::Config::from_vars(&vars).expect("the template sets the relay's environment");
    let source = get(
        relay,
        &["Properties", "Events", "OrdersStream", "Properties"],
    );
    assert_eq!(
        get_att(&source["Stream"]).as_deref(),
        Some("OrdersTable.StreamArn")
    );
    assert!(
        source["FunctionResponseTypes"]
            .as_sequence()
            .unwrap()
            .contains(&Value::from("ReportBatchItemFailures"))
    );
    assert_eq!(source["BisectBatchOnFunctionError"], Value::Bool(true));
    // Bounded: a row that cannot be published never blocks the shard for 24 h.
    let retries = source["MaximumRetryAttempts"].as_i64().unwrap_or(-1);
    assert!(
        (0..=100).contains(&retries),
        "MaximumRetryAttempts {retries}"
    );
    let destination = get_att(get(
        source,
        &["DestinationConfig", "OnFailure", "Destination"],
    ))
    .expect("an on-failure destination");
    // The relay sets rows aside in the same queue the event source uses.
    let failure_queue = get(
        relay,
        &[
            "Properties",
            "Environment",
            "Variables",
            "FAILURE_QUEUE_URL",
        ],
    );
    assert!(
        is_ref_to(failure_queue, destination.trim_end_matches(".Arn")),
        "{failure_queue:?}"
    );
    let pattern: serde_json::Value = serde_json::from_str(
        source["FilterCriteria"]["Filters"][0]["Pattern"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        pattern["eventName"][0], "INSERT",
        "only new rows: marking sent is a MODIFY"
    );
    assert_eq!(
        pattern["dynamodb"]["Keys"]["sk"]["S"][0]["prefix"],
        "OUTBOX#"
    );
    assert_eq!(
        get(
            template.resource("OrdersTable"),
            &["Properties", "StreamSpecification", "StreamViewType"]
        ),
        "NEW_IMAGE"
    );
}

#[test]
fn tables_are_on_demand_encrypted_recoverable_and_expire_what_expires() {
    let template = Template { root: template() };
    let tables: Vec<(String, &Value)> = template.of_type("AWS::DynamoDB::Table").collect();
    assert_eq!(tables.len(), 6);
    for (logical, table) in &tables {
        let p = get(table, &["Properties"]);
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{logical}");
        assert_eq!(
            get(p, &["SSESpecification", "SSEEnabled"]),
            &Value::Bool(true),
            "{logical}"
        );
        assert_eq!(
            get(
                p,
                &[
                    "PointInTimeRecoverySpecification",
                    "PointInTimeRecoveryEnabled"
                ]
            ),
            &Value::Bool(true),
            "{logical}"
        );
    }
    for ttl_table in ["IdempotencyTable", "OrdersTable"] {
        let ttl = get(
            template.resource(ttl_table),
            &["Properties", "TimeToLiveSpecification"],
        );
        assert_eq!(
            ttl["AttributeName"], "expiration",
            "{ttl_table}: the attribute the code writes"
        );
    }
}

#[test]
fn outputs_expose_what_users_and_tools_need() {
    let template = Template { root: template() };
    let outputs = template.root["Outputs"].as_mapping().unwrap();
    for name in [
        "EventsTopicArn",
        "HttpApiUrl",
        "AlarmTopicArn",
        "OrdersTableName",
        "IdempotencyTableName",
    ] {
        assert!(outputs.contains_key(name), "output {name}");
    }
    for service in [
        "Orders",
        "Payment",
        "Inventory",
        "Notification",
        "Analytics",
    ] {
        assert!(
            outputs.contains_key(format!("{service}QueueUrl").as_str()),
            "{service}QueueUrl"
        );
        assert!(
            outputs.contains_key(format!("{service}DeadLetterQueueUrl").as_str()),
            "{service}DeadLetterQueueUrl"
        );
    }
}

#[test]
fn every_alarm_tells_the_alarm_topic_when_it_fires_and_when_it_clears() {
    let template = Template { root: template() };
    let mut alarms = 0;
    for (logical, alarm) in template.of_type("AWS::CloudWatch::Alarm") {
        alarms += 1;
        for actions in ["AlarmActions", "OKActions"] {
            let targets = get(alarm, &["Properties", actions]).as_sequence();
            assert!(
                targets.is_some_and(|t| t.len() == 1 && is_ref_to(&t[0], "AlarmTopic")),
                "{logical}: {actions} must be [!Ref AlarmTopic]"
            );
        }
    }
    assert!(alarms > 0);
}

#[test]
fn every_function_has_an_errors_alarm_and_the_topic_one_on_events_no_consumer_can_receive() {
    let template = Template { root: template() };
    let alarms: Vec<&Value> = template
        .of_type("AWS::CloudWatch::Alarm")
        .map(|(_, a)| get(a, &["Properties"]))
        .collect();
    let on = |namespace: &str, metric: &str, dimension: &str, target: &dyn Fn(&Value) -> bool| {
        alarms.iter().any(|p| {
            p["Namespace"] == namespace
                && p["MetricName"] == metric
                && p["Dimensions"][0]["Name"] == dimension
                && target(&p["Dimensions"][0]["Value"])
                && p["Threshold"] == 0
                && p["ComparisonOperator"] == "GreaterThanThreshold"
        })
    };
    let mut functions = 0;
    for (logical, _) in template.of_type("AWS::Serverless::Function") {
        functions += 1;
        assert!(
            on("AWS/Lambda", "Errors", "FunctionName", &|v| is_ref_to(
                v, &logical
            )),
            "{logical}: no Errors alarm"
        );
    }
    assert_eq!(functions, 6);
    for metric in [
        "NumberOfNotificationsFilteredOut-InvalidAttributes",
        "NumberOfNotificationsFilteredOut-NoMessageAttributes",
    ] {
        assert!(
            on("AWS/SNS", metric, "TopicName", &|v| get_att(v)
                .is_some_and(|t| t == "EventsTopic.TopicName")),
            "no alarm on the events topic's {metric}"
        );
    }
}

/// The saved Logs Insights queries read every function's log group, and only fields the
/// consumer writes (its `record done` line and the record span; see
/// `shared/tests/record_log.rs`).
#[test]
fn the_saved_log_queries_cover_every_function_and_read_the_fields_the_consumer_logs() {
    let template = Template { root: template() };
    let log_groups: BTreeSet<String> = template
        .of_type("AWS::Serverless::Function")
        .map(|(_, f)| {
            get(f, &["Properties", "LoggingConfig", "LogGroup"])
                .as_tagged_target()
                .expect("LoggingConfig.LogGroup: !Ref")
        })
        .collect();
    let logged = [
        "@timestamp",
        "@log",
        "level",
        "message",
        "outcome",
        "kind",
        "duration_ms",
        "event_type",
        "aggregate_id",
        "correlation_id",
    ];
    let mut names = BTreeSet::new();
    for (logical, query) in template.of_type("AWS::Logs::QueryDefinition") {
        let p = get(query, &["Properties"]);
        let groups: BTreeSet<String> = p["LogGroupNames"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|g| reference(g).map(|(_, target)| target))
            .collect();
        assert_eq!(groups, log_groups, "{logical}: log groups");
        // The words that name fields: not in a string literal, not an alias made by `as`.
        let text = p["QueryString"].as_str().unwrap();
        let unquoted: String = text.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let words: Vec<&str> = unquoted
            .split(|c: char| !(c.is_alphanumeric() || "@._".contains(c)))
            .filter(|w| !w.is_empty())
            .collect();
        let aliases: BTreeSet<&str> = words
            .windows(2)
            .filter(|pair| pair[0] == "as")
            .map(|pair| pair[1])
            .collect();
        // Logs Insights commands, operators and functions these queries use.
        let language = [
            "fields", "filter", "sort", "limit", "stats", "by", "as", "and", "or", "asc", "desc",
            "count", "pct", "max",
        ];
        let fields: BTreeSet<&str> = words
            .into_iter()
            .filter(|w| !language.contains(w) && !aliases.contains(w))
            .filter(|w| w.parse::<f64>().is_err())
            .collect();
        assert!(!fields.is_empty(), "{logical}: reads no field");
        for field in fields {
            assert!(logged.contains(&field), "{logical}: {field} is not logged");
        }
        names.insert(logical);
    }
    assert_eq!(
        names,
        BTreeSet::from([
            "DeadLetteredByKindQuery".to_owned(),
            "FollowAnOrderQuery".to_owned(),
            "SlowestHandlersQuery".to_owned()
        ])
    );
}
