//! The template's `HttpApi` routes on a local port, as API Gateway HTTP APIs serve them:
//! payload format 2.0 requests (path parameters, query string, headers, cookies, base64 bodies
//! for binary content) and responses (`statusCode`, `headers`, `cookies`, `isBase64Encoded`,
//! or a bare value that becomes a JSON 200), 404 for no route, 500 when the function fails.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::function::{Function, Outcome};

/// One route: method (or `ANY`), path template, function.
#[derive(Clone)]
pub struct Bound {
    /// `GET`, `POST`, … or `ANY`.
    pub method: String,
    /// `/orders/{id}`.
    pub path: String,
    /// Who answers.
    pub function: Arc<Function>,
}

/// Path parameters of `path` under `template` (`/orders/{id}`, `/files/{proxy+}`), if it matches.
pub fn match_path(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let want: Vec<&str> = template
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let got: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut params = BTreeMap::new();
    for (i, segment) in want.iter().enumerate() {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            if i >= got.len() {
                return None;
            }
            params.insert(name.to_owned(), got[i..].join("/"));
            return Some(params);
        }
        let value = got.get(i)?;
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_owned(), (*value).to_owned());
            }
            None if segment == value => {}
            None => return None,
        }
    }
    (want.len() == got.len()).then_some(params)
}

fn textual(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.contains("x-www-form-urlencoded")
}

fn json_reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The payload format 2.0 request for `request` on `route`.
fn event(
    route: &Bound,
    params: BTreeMap<String, String>,
    parts: &http::request::Parts,
    body: &Bytes,
    local: SocketAddr,
    peer: SocketAddr,
    request_id: &str,
) -> Value {
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = value.to_str().unwrap_or_default().to_owned();
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                if let Value::String(s) = v {
                    s.push(',');
                    s.push_str(&value);
                }
            })
            .or_insert(Value::String(value));
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let mut query = serde_json::Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(k.to_owned())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(v);
                }
            })
            .or_insert(Value::String(v.to_owned()));
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (body, base64) = if body.is_empty() {
        (Value::Null, false)
    } else if textual(content_type) && std::str::from_utf8(body).is_ok() {
        (
            Value::String(String::from_utf8_lossy(body).into_owned()),
            false,
        )
    } else {
        (Value::String(aws_smithy_types::base64::encode(body)), true)
    };
    let route_key = format!("{} {}", route.method, route.path);
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": route.function.account_id(),
            "apiId": "local",
            "domainName": local.to_string(),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// The HTTP response for the function's `outcome`, as API Gateway makes it.
pub fn response(outcome: &Outcome) -> Response<Full<Bytes>> {
    let Outcome::Response(payload) = outcome else {
        return json_reply(500, &json!({"message": "Internal Server Error"}));
    };
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        return json_reply(500, &json!({"message": "Internal Server Error"}));
    };
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        // A value without statusCode: API Gateway answers 200 with it as JSON.
        return json_reply(200, &value);
    };
    let body = match value.get("body") {
        Some(Value::String(body)) => body.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let bytes = if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        aws_smithy_types::base64::decode(&body).unwrap_or_default()
    } else {
        body.into_bytes()
    };
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() =
        StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in value
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&crate::template::text_of(value)),
        ) {
            headers.insert(name, value);
        }
    }
    for cookie in value
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Ok(cookie) = http::HeaderValue::from_str(cookie.as_str().unwrap_or_default()) {
            headers.append(http::header::SET_COOKIE, cookie);
        }
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// Serves `routes` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, routes: Vec<Bound>) {
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let routes = Arc::new(routes);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            return;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let routes = routes.clone();
                async move { Ok::<_, Infallible>(answer(request, &routes, local, peer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    routes: &[Bound],
    local: SocketAddr,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return json_reply(400, &json!({"message": "Bad Request"}));
    };
    let found = routes.iter().find_map(|route| {
        let method_ok = route.method == "ANY" || route.method == parts.method.as_str();
        let params = match_path(&route.path, parts.uri.path())?;
        method_ok.then_some((route, params))
    });
    let Some((route, params)) = found else {
        return json_reply(404, &json!({"message": "Not Found"}));
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = event(route, params, &parts, &body, local, peer, &request_id);
    let (outcome, _) = route
        .function
        .invoke(Bytes::from(event.to_string()), 1)
        .await;
    let mut response = response(&outcome);
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_like_api_gateway_routes() {
        assert_eq!(match_path("/orders", "/orders"), Some(BTreeMap::new()));
        assert_eq!(
            match_path("/orders/{id}", "/orders/ord-1"),
            Some(BTreeMap::from([("id".into(), "ord-1".into())]))
        );
        assert_eq!(match_path("/orders/{id}", "/orders"), None);
        assert_eq!(match_path("/orders/{id}", "/orders/a/b"), None);
        assert_eq!(
            match_path("/files/{proxy+}", "/files/a/b"),
            Some(BTreeMap::from([("proxy".into(), "a/b".into())]))
        );
    }

    #[test]
    fn responses_are_shaped_like_api_gateways() {
        let ok = response(&Outcome::Response(Bytes::from(
            r#"{"statusCode":201,"headers":{"location":"/orders/1"},"body":"{\"a\":1}"}"#,
        )));
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers()["location"], "/orders/1");
        assert_eq!(ok.headers()["content-type"], "application/json");
        let bare = response(&Outcome::Response(Bytes::from(r#"{"hello":"world"}"#)));
        assert_eq!(bare.status(), 200);
        let failed = response(&Outcome::Error {
            error_type: "x".into(),
            message: "y".into(),
        });
        assert_eq!(failed.status(), 500);
    }
}
