//! Creating the template's resources in an AWS endpoint, in dependency order: topics, queues
//! and DLQs with their attributes and redrive policies, queue policies, subscriptions with
//! raw delivery and filter policies, tables with keys, TTL and streams. Functions and HTTP
//! APIs are read into specs for the runner. IAM, alarms, log groups and KMS are skipped on
//! purpose (the endpoint enforces none of them), and said so; any other type is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value as Json, json};
use serde_yaml_ng::Value as Yaml;

use crate::template::{self, Attributes, Resource, Template, TemplateError};

/// Resource types skipped on purpose, and why.
const SKIPPED: &[(&str, &str)] = &[
    (
        "AWS::IAM::Role",
        "IAM: the endpoint does not enforce permissions",
    ),
    (
        "AWS::IAM::Policy",
        "IAM: the endpoint does not enforce permissions",
    ),
    ("AWS::CloudWatch::Alarm", "alarms: no CloudWatch here"),
    (
        "AWS::Logs::LogGroup",
        "log groups: each function logs to its own file",
    ),
    (
        "AWS::Logs::QueryDefinition",
        "Logs Insights queries: no CloudWatch here",
    ),
    (
        "AWS::KMS::Key",
        "KMS: topics and queues stay unencrypted locally",
    ),
    (
        "AWS::KMS::Alias",
        "KMS: topics and queues stay unencrypted locally",
    ),
    (
        "AWS::SNS::TopicPolicy",
        "topic policies: the endpoint does not enforce them",
    ),
    (
        "AWS::Lambda::Permission",
        "permissions: the endpoint does not enforce them",
    ),
];

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The template uses something this runner does not understand.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The endpoint refused a request.
    #[error("{resource}: {message}")]
    Endpoint {
        /// The resource's logical id.
        resource: String,
        /// What failed.
        message: String,
    },
}

fn endpoint_error(resource: &str, err: impl std::error::Error + 'static) -> ProvisionError {
    ProvisionError::Endpoint {
        resource: resource.to_owned(),
        message: orderflow::aws::error_chain(&err),
    }
}

/// A resource as it exists now: what `Ref` and `Fn::GetAtt` answer.
#[derive(Clone, Debug)]
pub struct Created {
    /// `Type`.
    pub kind: String,
    /// `Ref`.
    pub reference: Json,
    /// `Fn::GetAtt` attributes.
    pub attributes: BTreeMap<String, Json>,
    /// Skipped on purpose (placeholders only), with why.
    pub skipped: Option<&'static str>,
}

/// Every resource by logical id.
#[derive(Clone, Debug, Default)]
pub struct Resources(pub BTreeMap<String, Created>);

impl Attributes for Resources {
    fn reference(&self, logical_id: &str) -> Option<Json> {
        self.0.get(logical_id).map(|c| c.reference.clone())
    }
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<Json> {
        self.0.get(logical_id)?.attributes.get(attribute).cloned()
    }
}

impl Resources {
    /// The `Ref` of `logical_id` as text.
    pub fn text(&self, logical_id: &str) -> Option<String> {
        self.reference(logical_id).map(|v| template::text_of(&v))
    }
}

/// An SQS event source of a function.
#[derive(Clone, Debug)]
pub struct SqsSource {
    /// The event's name in the template.
    pub name: String,
    /// The queue.
    pub queue_arn: String,
    /// The queue's URL.
    pub queue_url: String,
    /// `BatchSize` (default 10).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub batching_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`: instances at most.
    pub maximum_concurrency: usize,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, parsed.
    pub filters: Vec<Json>,
}

/// A DynamoDB stream event source of a function.
#[derive(Clone, Debug)]
pub struct StreamSource {
    /// The event's name in the template.
    pub name: String,
    /// The stream.
    pub stream_arn: String,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// `BatchSize` (default 100).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts` (-1: until the record expires).
    pub maximum_retry_attempts: i64,
    /// `MaximumRecordAgeInSeconds` (-1: no limit).
    pub maximum_record_age: i64,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, parsed.
    pub filters: Vec<Json>,
    /// `DestinationConfig.OnFailure` SQS queue: (ARN, URL).
    pub on_failure: Option<(String, String)>,
}

/// An HTTP API route of a function.
#[derive(Clone, Debug)]
pub struct Route {
    /// `GET`, `POST`, … or `ANY`.
    pub method: String,
    /// `/orders/{id}`.
    pub path: String,
}

/// What the runner needs to run one function.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    /// Logical id.
    pub logical_id: String,
    /// The function's name (what `Ref` gives).
    pub name: String,
    /// The binary's name (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// `Timeout`.
    pub timeout: Duration,
    /// `MemorySize` (MB).
    pub memory_mb: u32,
    /// `Environment.Variables`, resolved.
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig.LogFormat`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`.
    pub log_level: Option<String>,
    /// The log group name (`LoggingConfig.LogGroup`, or `/aws/lambda/<name>`).
    pub log_group: String,
    /// SQS event sources.
    pub sqs: Vec<SqsSource>,
    /// DynamoDB stream event sources.
    pub streams: Vec<StreamSource>,
    /// HTTP API routes.
    pub routes: Vec<Route>,
}

/// The outcome of provisioning.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    /// Every resource, created or skipped.
    pub resources: Resources,
    /// The functions to run.
    pub functions: Vec<FunctionSpec>,
    /// What was done, in order: (logical id, type, what).
    pub log: Vec<(String, String, String)>,
    /// `Outputs`, resolved.
    pub outputs: BTreeMap<String, String>,
}

/// The AWS clients provisioning uses.
pub struct Clients {
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
}

/// A name like CloudFormation gives: `<stack>-<logical id>-<10 letters>`, at most `max` long.
/// CloudFormation draws the letters once and keeps them for the stack's life; here they come
/// from the stack and logical id, so provisioning the same stack again (a long-lived endpoint,
/// LocalStack's init hook, then `up`) finds the same resources, and another stack gets its own.
fn physical_name(stack: &str, logical_id: &str, max: usize, suffix: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{stack}\u{0}{logical_id}"));
    let letters: String = digest
        .iter()
        .take(10)
        .map(|byte| char::from(b'A' + byte % 26))
        .collect();
    let mut base = format!("{stack}-{logical_id}");
    let room = max.saturating_sub(letters.len() + 1 + suffix.len());
    base.truncate(room);
    format!("{base}-{letters}{suffix}")
}

/// Orders `resources` so each comes after the resources it refers to.
fn dependency_order(resources: &[Resource]) -> Result<Vec<Resource>, TemplateError> {
    let ids: BTreeSet<&str> = resources.iter().map(|r| r.logical_id.as_str()).collect();
    let mut needs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for resource in resources {
        let mut refs = template::references(&resource.properties);
        refs.extend(resource.depends_on.iter().cloned());
        let refs: BTreeSet<String> = refs
            .into_iter()
            .filter(|r| ids.contains(r.as_str()) && *r != resource.logical_id)
            .collect();
        needs.insert(&resource.logical_id, refs);
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::new();
    while ordered.len() < resources.len() {
        let ready: Vec<&Resource> = resources
            .iter()
            .filter(|r| !done.contains(&r.logical_id))
            .filter(|r| {
                needs[r.logical_id.as_str()]
                    .iter()
                    .all(|d| done.contains(d))
            })
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = resources
                .iter()
                .filter(|r| !done.contains(&r.logical_id))
                .map(|r| r.logical_id.as_str())
                .collect();
            return Err(TemplateError::Unsupported {
                at: stuck.join(", "),
                reason: "these resources refer to each other in a cycle".into(),
            });
        }
        for resource in ready {
            done.insert(resource.logical_id.clone());
            ordered.push(resource.clone());
        }
    }
    Ok(ordered)
}

fn get<'a>(value: &'a Json, key: &str) -> &'a Json {
    value.get(key).unwrap_or(&Json::Null)
}

fn number(value: &Json, default: i64) -> i64 {
    match value {
        Json::Number(n) => n.as_i64().unwrap_or(default),
        Json::String(s) => s.parse().unwrap_or(default),
        _ => default,
    }
}

fn flag(value: &Json) -> bool {
    matches!(value, Json::Bool(true)) || value.as_str() == Some("true")
}

fn filters(source: &Json, at: &str) -> Result<Vec<Json>, TemplateError> {
    get(get(source, "FilterCriteria"), "Filters")
        .as_array()
        .into_iter()
        .flatten()
        .map(|filter| {
            let pattern = get(filter, "Pattern");
            match pattern {
                Json::String(text) => {
                    serde_json::from_str(text).map_err(|err| TemplateError::Unsupported {
                        at: at.to_owned(),
                        reason: format!("FilterCriteria pattern is not JSON: {err}"),
                    })
                }
                Json::Object(_) => Ok(pattern.clone()),
                _ => Err(TemplateError::Unsupported {
                    at: at.to_owned(),
                    reason: "FilterCriteria pattern must be a JSON string".into(),
                }),
            }
        })
        .collect()
}

/// Provisions `template` into the endpoint `clients` reach.
pub async fn provision(template: &Template, clients: &Clients) -> Result<Stack, ProvisionError> {
    let all = template.resources()?;
    let mut active = Vec::new();
    let mut stack = Stack::default();
    for resource in all {
        if template.is_active(&resource)? {
            active.push(resource);
        } else {
            stack.log.push((
                resource.logical_id.clone(),
                resource.kind.clone(),
                format!(
                    "skipped: condition {} is false",
                    resource.condition.clone().unwrap_or_default()
                ),
            ));
        }
    }
    let ordered = dependency_order(&active)?;
    for resource in &ordered {
        let (created, what) = create(template, clients, &stack, resource).await?;
        stack
            .log
            .push((resource.logical_id.clone(), resource.kind.clone(), what));
        stack
            .resources
            .0
            .insert(resource.logical_id.clone(), created);
    }
    // Functions last: their environment and events refer to everything else.
    for resource in ordered
        .iter()
        .filter(|r| r.kind == "AWS::Serverless::Function")
    {
        let spec = function_spec(template, &stack.resources, resource)?;
        stack.functions.push(spec);
    }
    for (name, value) in template.outputs() {
        if let Ok(Some(value)) = template::resolve(
            &value,
            template,
            &stack.resources,
            &format!("Outputs.{name}"),
        ) {
            stack.outputs.insert(name, template::text_of(&value));
        }
    }
    Ok(stack)
}

async fn create(
    template: &Template,
    clients: &Clients,
    stack: &Stack,
    resource: &Resource,
) -> Result<(Created, String), ProvisionError> {
    let id = resource.logical_id.as_str();
    let pseudo = &template.pseudo;
    let arn = |service: &str, name: &str| {
        format!(
            "arn:aws:{service}:{}:{}:{name}",
            pseudo.region, pseudo.account_id
        )
    };
    if let Some((_, why)) = SKIPPED.iter().find(|(kind, _)| *kind == resource.kind) {
        // Placeholders, so what refers to it still resolves (a log group's name included).
        let name = match template::resolve(&resource.properties, template, &stack.resources, id) {
            Ok(Some(props)) => ["LogGroupName", "RoleName", "AliasName"]
                .iter()
                .find_map(|k| props.get(*k).and_then(Json::as_str).map(str::to_owned)),
            _ => None,
        }
        .unwrap_or_else(|| format!("{}-{id}-local", pseudo.stack_name));
        let placeholder = arn(
            &resource
                .kind
                .split("::")
                .nth(1)
                .unwrap_or("x")
                .to_lowercase(),
            &name,
        );
        let created = Created {
            kind: resource.kind.clone(),
            reference: json!(name),
            attributes: BTreeMap::from([("Arn".to_owned(), json!(placeholder))]),
            skipped: Some(why),
        };
        return Ok((created, format!("skipped on purpose ({why})")));
    }
    let props = template::resolve(&resource.properties, template, &stack.resources, id)?
        .unwrap_or(Json::Null);
    match resource.kind.as_str() {
        "AWS::SNS::Topic" => {
            let fifo = flag(get(&props, "FifoTopic"));
            let name = get(&props, "TopicName")
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    physical_name(&pseudo.stack_name, id, 256, if fifo { ".fifo" } else { "" })
                });
            let mut request = clients.sns.create_topic().name(&name);
            if fifo {
                request = request.attributes("FifoTopic", "true");
            }
            if flag(get(&props, "ContentBasedDeduplication")) {
                request = request.attributes("ContentBasedDeduplication", "true");
            }
            let out = request.send().await.map_err(|e| endpoint_error(id, e))?;
            let topic_arn = out.topic_arn().unwrap_or_default().to_owned();
            let note = if get(&props, "KmsMasterKeyId").is_null() {
                ""
            } else {
                " (KMS encryption left out)"
            };
            Ok((
                Created {
                    kind: resource.kind.clone(),
                    reference: json!(topic_arn),
                    attributes: BTreeMap::from([
                        ("TopicArn".into(), json!(topic_arn)),
                        ("TopicName".into(), json!(name)),
                    ]),
                    skipped: None,
                },
                format!("created topic {name}{note}"),
            ))
        }
        "AWS::SQS::Queue" => {
            let fifo = flag(get(&props, "FifoQueue"));
            let name = get(&props, "QueueName")
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    physical_name(&pseudo.stack_name, id, 80, if fifo { ".fifo" } else { "" })
                });
            let mut request = clients.sqs.create_queue().queue_name(&name);
            for (property, attribute) in [
                ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
                (
                    "MessageRetentionPeriod",
                    QueueAttributeName::MessageRetentionPeriod,
                ),
                ("DelaySeconds", QueueAttributeName::DelaySeconds),
                (
                    "ReceiveMessageWaitTimeSeconds",
                    QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                ),
                ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
            ] {
                let value = get(&props, property);
                if !value.is_null() {
                    request = request.attributes(attribute, template::text_of(value));
                }
            }
            if fifo {
                request = request.attributes(QueueAttributeName::FifoQueue, "true");
            }
            if flag(get(&props, "ContentBasedDeduplication")) {
                request = request.attributes(QueueAttributeName::ContentBasedDeduplication, "true");
            }
            let redrive = get(&props, "RedrivePolicy");
            if !redrive.is_null() {
                let policy = json!({
                    "deadLetterTargetArn": get(redrive, "deadLetterTargetArn"),
                    "maxReceiveCount": template::text_of(get(redrive, "maxReceiveCount")),
                });
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let out = request.send().await.map_err(|e| endpoint_error(id, e))?;
            let url = out.queue_url().unwrap_or_default().to_owned();
            let attributes = clients
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| endpoint_error(id, e))?;
            let queue_arn = attributes
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn))
                .cloned()
                .unwrap_or_else(|| arn("sqs", &name));
            let redrives = if redrive.is_null() {
                String::new()
            } else {
                format!(
                    ", redrive after {} receives",
                    template::text_of(get(redrive, "maxReceiveCount"))
                )
            };
            Ok((
                Created {
                    kind: resource.kind.clone(),
                    reference: json!(url),
                    attributes: BTreeMap::from([
                        ("Arn".into(), json!(queue_arn)),
                        ("QueueName".into(), json!(name)),
                        ("QueueUrl".into(), json!(url)),
                    ]),
                    skipped: None,
                },
                format!("created queue {name}{redrives}"),
            ))
        }
        "AWS::SQS::QueuePolicy" => {
            let policy = get(&props, "PolicyDocument").to_string();
            let queues = get(&props, "Queues")
                .as_array()
                .cloned()
                .unwrap_or_default();
            for queue in &queues {
                clients
                    .sqs
                    .set_queue_attributes()
                    .queue_url(template::text_of(queue))
                    .attributes(QueueAttributeName::Policy, &policy)
                    .send()
                    .await
                    .map_err(|e| endpoint_error(id, e))?;
            }
            Ok((
                Created {
                    kind: resource.kind.clone(),
                    reference: json!(format!("{}-{id}", pseudo.stack_name)),
                    attributes: BTreeMap::new(),
                    skipped: None,
                },
                format!("set the policy of {} queue(s)", queues.len()),
            ))
        }
        "AWS::SNS::Subscription" => {
            let topic = template::text_of(get(&props, "TopicArn"));
            let protocol = template::text_of(get(&props, "Protocol"));
            let endpoint = template::text_of(get(&props, "Endpoint"));
            let mut request = clients
                .sns
                .subscribe()
                .topic_arn(&topic)
                .protocol(&protocol)
                .endpoint(&endpoint)
                .return_subscription_arn(true);
            let mut described = Vec::new();
            for attribute in ["RawMessageDelivery", "FilterPolicyScope"] {
                let value = get(&props, attribute);
                if !value.is_null() {
                    request = request.attributes(attribute, template::text_of(value));
                    described.push(format!("{attribute} {}", template::text_of(value)));
                }
            }
            for attribute in ["FilterPolicy", "RedrivePolicy"] {
                let value = get(&props, attribute);
                if !value.is_null() {
                    let text = match value {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    request = request.attributes(attribute, &text);
                    described.push(format!("{attribute} {text}"));
                }
            }
            let out = request.send().await.map_err(|e| endpoint_error(id, e))?;
            let subscription = out.subscription_arn().unwrap_or_default().to_owned();
            Ok((
                Created {
                    kind: resource.kind.clone(),
                    reference: json!(subscription),
                    attributes: BTreeMap::new(),
                    skipped: None,
                },
                format!(
                    "subscribed {protocol} {} ({})",
                    endpoint.rsplit(':').next().unwrap_or_default(),
                    described.join(", ")
                ),
            ))
        }
        "AWS::DynamoDB::Table" => create_table(template, clients, resource, &props).await,
        "AWS::Serverless::Function" => {
            let name = get(&props, "FunctionName")
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| physical_name(&pseudo.stack_name, id, 64, ""));
            Ok((
                Created {
                    kind: resource.kind.clone(),
                    reference: json!(name),
                    attributes: BTreeMap::from([(
                        "Arn".into(),
                        json!(arn("lambda", &format!("function:{name}"))),
                    )]),
                    skipped: None,
                },
                format!("function {name}: run by this runner"),
            ))
        }
        "AWS::Serverless::HttpApi" => Ok((
            Created {
                kind: resource.kind.clone(),
                reference: json!("local"),
                attributes: BTreeMap::new(),
                skipped: None,
            },
            "HTTP API: served by this runner".into(),
        )),
        other => Err(TemplateError::Unsupported {
            at: id.to_owned(),
            reason: format!("the resource type {other} is not supported by this runner"),
        }
        .into()),
    }
}

async fn create_table(
    template: &Template,
    clients: &Clients,
    resource: &Resource,
    props: &Json,
) -> Result<(Created, String), ProvisionError> {
    let id = resource.logical_id.as_str();
    let unsupported = |reason: &str| -> ProvisionError {
        TemplateError::Unsupported {
            at: id.to_owned(),
            reason: reason.to_owned(),
        }
        .into()
    };
    for property in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
        if !get(props, property).is_null() {
            return Err(unsupported(&format!(
                "{property} are not supported by this runner"
            )));
        }
    }
    let name = get(props, "TableName")
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| physical_name(&template.pseudo.stack_name, id, 255, ""));
    let mut request = clients.dynamodb.create_table().table_name(&name);
    for definition in get(props, "AttributeDefinitions")
        .as_array()
        .into_iter()
        .flatten()
    {
        let kind = match get(definition, "AttributeType").as_str() {
            Some("S") => ScalarAttributeType::S,
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            other => return Err(unsupported(&format!("attribute type {other:?}"))),
        };
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(template::text_of(get(definition, "AttributeName")))
                .attribute_type(kind)
                .build()
                .map_err(|e| endpoint_error(id, e))?,
        );
    }
    for key in get(props, "KeySchema").as_array().into_iter().flatten() {
        let kind = match get(key, "KeyType").as_str() {
            Some("HASH") => KeyType::Hash,
            Some("RANGE") => KeyType::Range,
            other => return Err(unsupported(&format!("key type {other:?}"))),
        };
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(template::text_of(get(key, "AttributeName")))
                .key_type(kind)
                .build()
                .map_err(|e| endpoint_error(id, e))?,
        );
    }
    match get(props, "BillingMode").as_str() {
        Some("PAY_PER_REQUEST") | None => {
            request = request.billing_mode(BillingMode::PayPerRequest)
        }
        Some(other) => return Err(unsupported(&format!("BillingMode {other}"))),
    }
    let stream = get(get(props, "StreamSpecification"), "StreamViewType")
        .as_str()
        .map(str::to_owned);
    if let Some(view) = &stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(|e| endpoint_error(id, e))?,
        );
    }
    // A table that already exists (provisioned earlier into a long-lived endpoint, or by
    // LocalStack's init hook) is kept as it is, like a stack update that changes nothing.
    let existed = match request.send().await {
        Ok(_) => false,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            true
        }
        Err(err) => return Err(endpoint_error(id, err)),
    };
    use aws_sdk_dynamodb::client::Waiters;
    let described = clients
        .dynamodb
        .wait_until_table_exists()
        .table_name(&name)
        .wait(Duration::from_secs(60))
        .await
        .map_err(|e| endpoint_error(id, e))?;
    let table = described
        .as_result()
        .ok()
        .and_then(|out| out.table().cloned());
    let ttl = get(props, "TimeToLiveSpecification");
    let mut what = if existed {
        format!("kept existing table {name}")
    } else {
        format!("created table {name}")
    };
    if flag(get(ttl, "Enabled")) && !existed {
        let attribute = template::text_of(get(ttl, "AttributeName"));
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(&attribute)
                    .build()
                    .map_err(|e| endpoint_error(id, e))?,
            )
            .send()
            .await
            .map_err(|e| endpoint_error(id, e))?;
        what.push_str(&format!(", TTL on {attribute}"));
    }
    let mut attributes = BTreeMap::new();
    let table_arn = table
        .as_ref()
        .and_then(|t| t.table_arn().map(str::to_owned))
        .unwrap_or_else(|| {
            format!(
                "arn:aws:dynamodb:{}:{}:table/{name}",
                template.pseudo.region, template.pseudo.account_id
            )
        });
    attributes.insert("Arn".into(), json!(table_arn));
    if let Some(view) = &stream {
        let stream_arn = table
            .as_ref()
            .and_then(|t| t.latest_stream_arn().map(str::to_owned))
            .ok_or_else(|| ProvisionError::Endpoint {
                resource: id.to_owned(),
                message: "the table was created with a stream but reports no stream ARN".into(),
            })?;
        attributes.insert("StreamArn".into(), json!(stream_arn));
        what.push_str(&format!(", stream {view}"));
    }
    Ok((
        Created {
            kind: resource.kind.clone(),
            reference: json!(name),
            attributes,
            skipped: None,
        },
        what,
    ))
}

/// A function property from the function, else from `Globals.Function`.
fn property(
    template: &Template,
    resources: &Resources,
    resource: &Resource,
    name: &str,
) -> Result<Json, TemplateError> {
    let own = resource.properties.get(name);
    let value = match own {
        Some(value) => value.clone(),
        None => template
            .function_globals()
            .get(name)
            .cloned()
            .unwrap_or(Yaml::Null),
    };
    Ok(template::resolve(&value, template, resources, &resource.logical_id)?.unwrap_or(Json::Null))
}

fn function_spec(
    template: &Template,
    resources: &Resources,
    resource: &Resource,
) -> Result<FunctionSpec, TemplateError> {
    let id = resource.logical_id.clone();
    let unsupported = |reason: String| TemplateError::Unsupported {
        at: id.clone(),
        reason,
    };
    let binary = resource
        .metadata
        .get("BuildProperties")
        .and_then(|b| b.get("Binary"))
        .and_then(Yaml::as_str)
        .ok_or_else(|| unsupported("Metadata.BuildProperties.Binary names no binary".into()))?
        .to_owned();
    let mut environment = BTreeMap::new();
    for scope in [
        template::resolve(
            template
                .function_globals()
                .get("Environment")
                .unwrap_or(&Yaml::Null),
            template,
            resources,
            &id,
        )?,
        template::resolve(
            resource
                .properties
                .get("Environment")
                .unwrap_or(&Yaml::Null),
            template,
            resources,
            &id,
        )?,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(vars) = get(&scope, "Variables").as_object() {
            for (k, v) in vars {
                environment.insert(k.clone(), template::text_of(v));
            }
        }
    }
    let logging = property(template, resources, resource, "LoggingConfig")?;
    let name = resources.text(&id).unwrap_or_else(|| id.clone());
    let log_group = get(&logging, "LogGroup")
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("/aws/lambda/{name}"));
    let mut spec = FunctionSpec {
        logical_id: id.clone(),
        name,
        binary,
        timeout: Duration::from_secs(
            number(&property(template, resources, resource, "Timeout")?, 3) as u64,
        ),
        memory_mb: number(&property(template, resources, resource, "MemorySize")?, 128) as u32,
        environment,
        log_format: get(&logging, "LogFormat").as_str().map(str::to_owned),
        log_level: get(&logging, "ApplicationLogLevel")
            .as_str()
            .map(str::to_owned),
        log_group,
        sqs: Vec::new(),
        streams: Vec::new(),
        routes: Vec::new(),
    };
    let events = template::resolve(
        resource.properties.get("Events").unwrap_or(&Yaml::Null),
        template,
        resources,
        &id,
    )?
    .unwrap_or(Json::Null);
    for (event, definition) in events.as_object().into_iter().flatten() {
        let at = format!("{id}.Events.{event}");
        let source = get(definition, "Properties");
        let responses: Vec<&str> = get(source, "FunctionResponseTypes")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        let report = responses.contains(&"ReportBatchItemFailures");
        match get(definition, "Type").as_str() {
            Some("SQS") => {
                let queue_arn = template::text_of(get(source, "Queue"));
                let queue_url = resources
                    .0
                    .values()
                    .find(|c| c.attributes.get("Arn").and_then(Json::as_str) == Some(&queue_arn))
                    .and_then(|c| c.attributes.get("QueueUrl"))
                    .map(template::text_of)
                    .ok_or_else(|| TemplateError::Unsupported {
                        at: at.clone(),
                        reason: format!("queue {queue_arn} is not one of this template's"),
                    })?;
                spec.sqs.push(SqsSource {
                    name: event.clone(),
                    queue_arn,
                    queue_url,
                    batch_size: number(get(source, "BatchSize"), 10) as u32,
                    batching_window: Duration::from_secs(number(
                        get(source, "MaximumBatchingWindowInSeconds"),
                        0,
                    ) as u64),
                    maximum_concurrency: number(
                        get(get(source, "ScalingConfig"), "MaximumConcurrency"),
                        5,
                    ) as usize,
                    report_batch_item_failures: report,
                    filters: filters(source, &at)?,
                });
            }
            Some("DynamoDB") => {
                let on_failure = get(
                    get(get(source, "DestinationConfig"), "OnFailure"),
                    "Destination",
                );
                let on_failure = if on_failure.is_null() {
                    None
                } else {
                    let arn = template::text_of(on_failure);
                    let url = resources
                        .0
                        .values()
                        .find(|c| c.attributes.get("Arn").and_then(Json::as_str) == Some(&arn))
                        .and_then(|c| c.attributes.get("QueueUrl"))
                        .map(template::text_of)
                        .ok_or_else(|| TemplateError::Unsupported {
                            at: at.clone(),
                            reason: "OnFailure must be an SQS queue of this template".into(),
                        })?;
                    Some((arn, url))
                };
                spec.streams.push(StreamSource {
                    name: event.clone(),
                    stream_arn: template::text_of(get(source, "Stream")),
                    starting_position: get(source, "StartingPosition")
                        .as_str()
                        .unwrap_or("LATEST")
                        .to_owned(),
                    batch_size: number(get(source, "BatchSize"), 100) as u32,
                    batching_window: Duration::from_secs(number(
                        get(source, "MaximumBatchingWindowInSeconds"),
                        0,
                    ) as u64),
                    bisect_on_error: flag(get(source, "BisectBatchOnFunctionError")),
                    maximum_retry_attempts: number(get(source, "MaximumRetryAttempts"), -1),
                    maximum_record_age: number(get(source, "MaximumRecordAgeInSeconds"), -1),
                    report_batch_item_failures: report,
                    filters: filters(source, &at)?,
                    on_failure,
                });
            }
            Some("HttpApi") => spec.routes.push(Route {
                method: get(source, "Method")
                    .as_str()
                    .unwrap_or("ANY")
                    .to_uppercase(),
                path: get(source, "Path").as_str().unwrap_or("/").to_owned(),
            }),
            other => {
                return Err(TemplateError::Unsupported {
                    at,
                    reason: format!("event type {other:?} is not supported by this runner"),
                });
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_come_after_what_they_refer_to_and_cycles_are_refused() {
        let template = Template::parse(
            r#"
Resources:
  Sub: {Type: AWS::SNS::Subscription, Properties: {TopicArn: !Ref Topic, Endpoint: !GetAtt Queue.Arn}}
  Queue: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn}}}
  Topic: {Type: AWS::SNS::Topic}
  Dlq: {Type: AWS::SQS::Queue}
"#,
            &[],
            crate::template::Pseudo { stack_name: "s".into(), region: "us-east-1".into(), account_id: "1".into() },
        )
        .unwrap();
        let order: Vec<String> = dependency_order(&template.resources().unwrap())
            .unwrap()
            .into_iter()
            .map(|r| r.logical_id)
            .collect();
        let at = |id: &str| order.iter().position(|o| o == id).unwrap();
        assert!(at("Dlq") < at("Queue") && at("Queue") < at("Sub") && at("Topic") < at("Sub"));
        let cyclic = Template::parse(
            "Resources:\n  A: {Type: AWS::SQS::Queue, Properties: {X: !Ref B}}\n  B: {Type: AWS::SQS::Queue, Properties: {X: !Ref A}}\n",
            &[],
            crate::template::Pseudo { stack_name: "s".into(), region: "us-east-1".into(), account_id: "1".into() },
        )
        .unwrap();
        assert!(
            dependency_order(&cyclic.resources().unwrap())
                .unwrap_err()
                .to_string()
                .contains("cycle")
        );
    }

    #[test]
    fn names_are_stable_per_stack_bounded_and_keep_the_fifo_suffix() {
        let a = physical_name("orderflow-local", "PaymentDeadLetterQueue", 80, ".fifo");
        assert!(a.starts_with("orderflow-local-PaymentDeadLetterQueue-") && a.ends_with(".fifo"));
        assert!(physical_name(&"x".repeat(100), "Q", 80, ".fifo").len() <= 80);
        assert_eq!(
            a,
            physical_name("orderflow-local", "PaymentDeadLetterQueue", 80, ".fifo")
        );
        assert_ne!(
            a,
            physical_name("orderflow-other", "PaymentDeadLetterQueue", 80, ".fifo")
        );
        assert_ne!(
            physical_name("s", "PaymentQueue", 80, ""),
            physical_name("s", "PaymentQueuf", 80, "")
        );
    }
}
