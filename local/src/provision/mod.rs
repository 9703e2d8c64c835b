//! Creating the template's resources in an AWS endpoint, in dependency order: topics, queues
//! and DLQs with their attributes and redrive policies, queue policies, subscriptions with
//! raw delivery and filter policies, tables with keys, TTL and streams. Functions and HTTP
//! APIs are read into specs for the runner. IAM, alarms, log groups and KMS are skipped on
//! purpose (the endpoint enforces none of them), and said so; any other type is refused.
//!
//! This module orders the resources and dispatches each by type: `messaging` (topics, queues,
//! queue policies, subscriptions), `table`, and `function` (the specs the runner runs).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use crate::template::{self, Attributes, Resource, Template, TemplateError};

mod function;
mod messaging;
mod table;

use function::function_spec;
pub use function::{FunctionSpec, Route, SqsSource, StreamSource};

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

/// What creating a resource needs: the template, the clients, the resource and its resolved
/// properties.
#[derive(Clone, Copy)]
struct At<'a> {
    template: &'a Template,
    clients: &'a Clients,
    resource: &'a Resource,
    props: &'a Json,
}

/// A resource created, and what to say about it.
type Made = Result<(Created, String), ProvisionError>;

impl Created {
    /// A resource that now exists: its `Ref` and its `Fn::GetAtt` attributes.
    fn made(resource: &Resource, reference: Json, attributes: &[(&str, Json)]) -> Self {
        Created {
            kind: resource.kind.clone(),
            reference,
            attributes: attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            skipped: None,
        }
    }
}

/// The name the template gives in `property`, else one made like CloudFormation makes it (at
/// most `max` long, ending in `.fifo` for a FIFO resource).
fn name_of(
    template: &Template,
    resource: &Resource,
    props: &Json,
    property: &str,
    max: usize,
    fifo: bool,
) -> String {
    get(props, property)
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let suffix = if fifo { ".fifo" } else { "" };
            physical_name(
                &template.pseudo.stack_name,
                &resource.logical_id,
                max,
                suffix,
            )
        })
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

/// The ARN of `name` in `service`, in the template's region and account.
fn arn(template: &Template, service: &str, name: &str) -> String {
    let pseudo = &template.pseudo;
    format!(
        "arn:aws:{service}:{}:{}:{name}",
        pseudo.region, pseudo.account_id
    )
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
            template,
            &resource
                .kind
                .split("::")
                .nth(1)
                .unwrap_or("x")
                .to_lowercase(),
            &name,
        );
        let created = Created {
            skipped: Some(why),
            ..Created::made(resource, json!(name), &[("Arn", json!(placeholder))])
        };
        return Ok((created, format!("skipped on purpose ({why})")));
    }
    let props = template::resolve(&resource.properties, template, &stack.resources, id)?
        .unwrap_or(Json::Null);
    let at = At {
        template,
        clients,
        resource,
        props: &props,
    };
    match resource.kind.as_str() {
        "AWS::SNS::Topic" => messaging::topic(&at).await,
        "AWS::SQS::Queue" => messaging::queue(&at).await,
        "AWS::SQS::QueuePolicy" => messaging::queue_policy(&at).await,
        "AWS::SNS::Subscription" => messaging::subscription(&at).await,
        "AWS::DynamoDB::Table" => table::create(&at).await,
        "AWS::Serverless::Function" => Ok(function::placeholder(template, resource, &props)),
        "AWS::Serverless::HttpApi" => Ok((
            Created::made(resource, json!("local"), &[]),
            "HTTP API: served by this runner".into(),
        )),
        other => Err(TemplateError::Unsupported {
            at: id.to_owned(),
            reason: format!("the resource type {other} is not supported by this runner"),
        }
        .into()),
    }
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
