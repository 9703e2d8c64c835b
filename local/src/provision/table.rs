//! Tables: keys, TTL and streams.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use serde_json::json;

use super::{At, Created, Made, ProvisionError, endpoint_error, flag, get, name_of};
use crate::template::{self, TemplateError};

/// `AWS::DynamoDB::Table`: keys, TTL and streams (secondary indexes are refused).
pub(super) async fn create(at: &At<'_>) -> Made {
    let At {
        template,
        clients,
        resource,
        props,
    } = *at;
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
    let name = name_of(template, resource, props, "TableName", 255, false);
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
            attributes,
            ..Created::made(resource, json!(name), &[])
        },
        what,
    ))
}
