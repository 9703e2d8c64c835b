//! What the runner needs to run each function: its spec, read from the template.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};
use serde_yaml_ng::Value as Yaml;

use super::{Created, Resources, arn, flag, get, name_of, number};
use crate::template::{self, Resource, Template, TemplateError};

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

/// `AWS::Serverless::Function`: nothing to create (this runner runs it), only what `Ref` and
/// `Fn::GetAtt` answer.
pub(super) fn placeholder(
    template: &Template,
    resource: &Resource,
    props: &Json,
) -> (Created, String) {
    let name = name_of(template, resource, props, "FunctionName", 64, false);
    (
        Created::made(
            resource,
            json!(name),
            &[(
                "Arn",
                json!(arn(template, "lambda", &format!("function:{name}"))),
            )],
        ),
        format!("function {name}: run by this runner"),
    )
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

/// The spec of the function `resource`.
pub(super) fn function_spec(
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
