//! Topics, queues (with their redrive policies), queue policies and subscriptions (raw
//! delivery, filter policies).

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value as Json, json};

use super::{At, Created, Made, arn, endpoint_error, flag, get, name_of};
use crate::template;

/// `AWS::SNS::Topic`: standard or FIFO, content-based deduplication (KMS left out).
pub(super) async fn topic(at: &At<'_>) -> Made {
    let At {
        template,
        clients,
        resource,
        props,
    } = *at;
    let id = resource.logical_id.as_str();
    let fifo = flag(get(props, "FifoTopic"));
    let name = name_of(template, resource, props, "TopicName", 256, fifo);
    let mut request = clients.sns.create_topic().name(&name);
    if fifo {
        request = request.attributes("FifoTopic", "true");
    }
    if flag(get(props, "ContentBasedDeduplication")) {
        request = request.attributes("ContentBasedDeduplication", "true");
    }
    let out = request.send().await.map_err(|e| endpoint_error(id, e))?;
    let topic_arn = out.topic_arn().unwrap_or_default().to_owned();
    let note = if get(props, "KmsMasterKeyId").is_null() {
        ""
    } else {
        " (KMS encryption left out)"
    };
    Ok((
        Created::made(
            resource,
            json!(topic_arn),
            &[("TopicArn", json!(topic_arn)), ("TopicName", json!(name))],
        ),
        format!("created topic {name}{note}"),
    ))
}

/// `AWS::SQS::Queue`: its attributes and redrive policy.
pub(super) async fn queue(at: &At<'_>) -> Made {
    let At {
        template,
        clients,
        resource,
        props,
    } = *at;
    let id = resource.logical_id.as_str();
    let fifo = flag(get(props, "FifoQueue"));
    let name = name_of(template, resource, props, "QueueName", 80, fifo);
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
        let value = get(props, property);
        if !value.is_null() {
            request = request.attributes(attribute, template::text_of(value));
        }
    }
    if fifo {
        request = request.attributes(QueueAttributeName::FifoQueue, "true");
    }
    if flag(get(props, "ContentBasedDeduplication")) {
        request = request.attributes(QueueAttributeName::ContentBasedDeduplication, "true");
    }
    let redrive = get(props, "RedrivePolicy");
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
        .unwrap_or_else(|| arn(template, "sqs", &name));
    let redrives = if redrive.is_null() {
        String::new()
    } else {
        format!(
            ", redrive after {} receives",
            template::text_of(get(redrive, "maxReceiveCount"))
        )
    };
    Ok((
        Created::made(
            resource,
            json!(url),
            &[
                ("Arn", json!(queue_arn)),
                ("QueueName", json!(name)),
                ("QueueUrl", json!(url)),
            ],
        ),
        format!("created queue {name}{redrives}"),
    ))
}

/// `AWS::SQS::QueuePolicy`: set on every queue it names.
pub(super) async fn queue_policy(at: &At<'_>) -> Made {
    let At {
        template,
        clients,
        resource,
        props,
    } = *at;
    let id = resource.logical_id.as_str();
    let pseudo = &template.pseudo;
    let policy = get(props, "PolicyDocument").to_string();
    let queues = get(props, "Queues").as_array().cloned().unwrap_or_default();
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
        Created::made(resource, json!(format!("{}-{id}", pseudo.stack_name)), &[]),
        format!("set the policy of {} queue(s)", queues.len()),
    ))
}

/// `AWS::SNS::Subscription`: raw delivery, filter policy and its scope, redrive policy.
pub(super) async fn subscription(at: &At<'_>) -> Made {
    let At {
        clients,
        resource,
        props,
        ..
    } = *at;
    let id = resource.logical_id.as_str();
    let topic = template::text_of(get(props, "TopicArn"));
    let protocol = template::text_of(get(props, "Protocol"));
    let endpoint = template::text_of(get(props, "Endpoint"));
    let mut request = clients
        .sns
        .subscribe()
        .topic_arn(&topic)
        .protocol(&protocol)
        .endpoint(&endpoint)
        .return_subscription_arn(true);
    let mut described = Vec::new();
    for attribute in ["RawMessageDelivery", "FilterPolicyScope"] {
        let value = get(props, attribute);
        if !value.is_null() {
            request = request.attributes(attribute, template::text_of(value));
            described.push(format!("{attribute} {}", template::text_of(value)));
        }
    }
    for attribute in ["FilterPolicy", "RedrivePolicy"] {
        let value = get(props, attribute);
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
        Created::made(resource, json!(subscription), &[]),
        format!(
            "subscribed {protocol} {} ({})",
            endpoint.rsplit(':').next().unwrap_or_default(),
            described.join(", ")
        ),
    ))
}
