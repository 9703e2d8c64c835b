//! The HTTP API (API Gateway HTTP API / Function URL, payload format 2.0):
//! `POST /orders` and `GET /orders/{id}`.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use chrono::Utc;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::domain::{FieldError, Order, parse_request};
use crate::error::OrdersError;
use crate::store::{Created, OrderRepository};

/// Answers one HTTP request.
pub async fn route(
    request: &ApiGatewayV2httpRequest,
    repository: &dyn OrderRepository,
) -> ApiGatewayV2httpResponse {
    let method = &request.request_context.http.method;
    let path = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("/");
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["orders"]) => create(request, repository).await,
        (&Method::GET, ["orders", id]) => view(id, repository).await,
        (_, ["orders"] | ["orders", _]) => respond(
            405,
            &json!({"message": format!("{method} is not allowed on {path}")}),
        ),
        _ => respond(
            404,
            &json!({"message": format!("no route for {method} {path}")}),
        ),
    }
}

async fn create(
    request: &ApiGatewayV2httpRequest,
    repository: &dyn OrderRepository,
) -> ApiGatewayV2httpResponse {
    let body = match body_bytes(request) {
        Ok(body) => body,
        Err(message) => {
            return invalid(vec![FieldError {
                field: String::new(),
                message,
            }]);
        }
    };
    let parsed = match parse_request(&body) {
        Ok(parsed) => parsed,
        Err(errors) => return invalid(errors),
    };
    // A client that retries with the same Idempotency-Key gets the same order, not a second
    // one. The key is the customer's: another customer's identical key is another order.
    let key = request
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let order_id = match &key {
        Some(key) => {
            let name = format!("{}\n{key}", parsed.customer_id);
            format!(
                "ord-{}",
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
            )
        }
        None => format!("ord-{}", uuid::Uuid::new_v4()),
    };
    let (order, event) = match Order::place(order_id, parsed, Utc::now()) {
        Ok(placed) => placed,
        Err(errors) => return invalid(errors),
    };
    match repository.create(&order, &event).await {
        Ok(Created::New) => {
            info!(order_id = %order.order_id, event_id = %event.event_id, total = %order.total, "order placed");
            let mut response = respond(201, &summary(&order));
            if let Ok(location) = HeaderValue::from_str(&format!("/orders/{}", order.order_id)) {
                response.headers.insert("location", location);
            }
            response
        }
        Ok(Created::Exists(existing)) if same_order(&existing, &order) => {
            respond(200, &summary(&existing))
        }
        Ok(Created::Exists(_)) => respond(
            409,
            &json!({"message": format!(
                "Idempotency-Key `{}` was already used for a different order",
                key.unwrap_or_default()
            )}),
        ),
        Err(err) => failed(&err),
    }
}

async fn view(order_id: &str, repository: &dyn OrderRepository) -> ApiGatewayV2httpResponse {
    match repository.view(order_id).await {
        Ok(Some((order, history))) => {
            match (serde_json::to_value(&order), serde_json::to_value(history)) {
                (Ok(mut body), Ok(history)) => {
                    body["history"] = history;
                    respond(200, &body)
                }
                (Err(err), _) | (_, Err(err)) => {
                    error!(%err, order_id, "order cannot be shown");
                    respond(500, &json!({"message": "the order cannot be shown"}))
                }
            }
        }
        Ok(None) => respond(
            404,
            &json!({"message": format!("order {order_id} does not exist")}),
        ),
        Err(err) => failed(&err),
    }
}

/// Whether a retried request asks for the order that exists (same customer, lines, currency).
fn same_order(existing: &Order, requested: &Order) -> bool {
    existing.customer_id == requested.customer_id
        && existing.items == requested.items
        && existing.currency == requested.currency
}

fn summary(order: &Order) -> Value {
    json!({"orderId": order.order_id, "status": order.status, "total": order.total, "currency": order.currency})
}

fn body_bytes(request: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, String> {
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        aws_smithy_types::base64::decode(body)
            .map_err(|e| format!("the body is not valid base64: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn invalid(errors: Vec<FieldError>) -> ApiGatewayV2httpResponse {
    respond(
        400,
        &json!({"message": "the order is invalid", "errors": errors}),
    )
}

/// A store failure: 503 with `Retry-After` when a retry can help, 500 when it cannot.
fn failed(err: &OrdersError) -> ApiGatewayV2httpResponse {
    if orderflow::Classify::is_retryable(err) {
        return unavailable(&err.to_string());
    }
    error!(error = %err, "the order service cannot serve this request");
    respond(
        500,
        &json!({"message": "the order service failed; this is not something a retry fixes"}),
    )
}

fn unavailable(reason: &str) -> ApiGatewayV2httpResponse {
    error!(%reason, "orders table unavailable");
    let mut response = respond(
        503,
        &json!({"message": "the order service is unavailable; retry with the same Idempotency-Key"}),
    );
    response
        .headers
        .insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// A JSON response.
pub fn respond(status: i64, body: &Value) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}
