//! A metering proxy in front of the AWS endpoint. Every function, and every event source the
//! runner polls for one, gets an endpoint of its own (a loopback port of this proxy) as its
//! `AWS_ENDPOINT_URL`; the proxy forwards each request to the endpoint of its service
//! (`AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`) and counts it by caller, service
//! and operation ([`tally`]): how many requests one order costs, measured on the wire.
//!
//! It can also inject faults ([`faults`]): throttling, server errors, slow and lost answers,
//! denied access, in the service's own protocol. An endpoint that does not answer closes the caller's
//! connection, as an endpoint that is down would.
//!
//! Only plain-HTTP endpoints (emulators) are proxied: SigV4 signs the `Host` a request was
//! sent to, so a proxy in front of AWS itself would break every signature.

pub mod faults;
pub mod operation;
pub mod tally;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Uri;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultRule, Faults};
pub use operation::{Operation, Service};
pub use tally::{Key, Tally, Usage};

use tally::Seen;

/// Where each service's requests go.
#[derive(Clone, Debug)]
pub struct Upstreams {
    default: Option<Uri>,
    by_service: BTreeMap<Service, Uri>,
}

impl Upstreams {
    /// The endpoints the SDK would use with these variables (`AWS_ENDPOINT_URL`,
    /// `AWS_ENDPOINT_URL_<SERVICE>`). `Ok(None)`: there is nothing to proxy (no endpoint set,
    /// so the SDK goes to AWS), or an endpoint is not plain HTTP.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Option<Upstreams>, String> {
        let parse = |name: &str, url: &str| -> Result<Option<Uri>, String> {
            let uri: Uri = url
                .parse()
                .map_err(|e| format!("{name}={url} is not a URL: {e}"))?;
            Ok((uri.scheme_str() == Some("http")).then_some(uri))
        };
        let mut by_service = BTreeMap::new();
        let services = [
            Service::DynamoDb,
            Service::DynamoDbStreams,
            Service::Sqs,
            Service::Sns,
            Service::Sts,
        ];
        for service in services {
            let Some(suffix) = service.endpoint_suffix() else {
                continue;
            };
            let name = format!("AWS_ENDPOINT_URL_{suffix}");
            if let Some(url) = vars.get(&name) {
                match parse(&name, url)? {
                    Some(uri) => by_service.insert(service, uri),
                    None => return Ok(None),
                };
            }
        }
        let default = match vars.get("AWS_ENDPOINT_URL") {
            Some(url) => match parse("AWS_ENDPOINT_URL", url)? {
                Some(uri) => Some(uri),
                None => return Ok(None),
            },
            None => None,
        };
        if default.is_none() && by_service.len() < services.len() {
            // Some service would go to AWS itself.
            return Ok(None);
        }
        Ok(Some(Upstreams {
            default,
            by_service,
        }))
    }

    fn of(&self, service: Service) -> Option<&Uri> {
        self.by_service.get(&service).or(self.default.as_ref())
    }
}

/// The proxy: one port per caller, one tally and one set of faults for all.
pub struct EndpointProxy {
    upstreams: Upstreams,
    client: Client<HttpConnector, Full<Bytes>>,
    tally: Arc<Tally>,
    faults: Arc<Faults>,
    ports: Mutex<BTreeMap<String, SocketAddr>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for EndpointProxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl EndpointProxy {
    /// A proxy to `upstreams`, without faults.
    pub fn new(upstreams: Upstreams) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        EndpointProxy {
            upstreams,
            client: Client::builder(TokioExecutor::new()).build(connector),
            tally: Arc::new(Tally::default()),
            faults: Arc::new(Faults::default()),
            ports: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// What has been counted.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The faults in force (none until set).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The endpoint URL `caller` is to use: a port of its own, opened on first use.
    pub async fn endpoint_for(self: &Arc<Self>, caller: &str) -> std::io::Result<String> {
        if let Some(addr) = self.ports.lock().get(caller) {
            return Ok(format!("http://{addr}"));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        self.ports.lock().insert(caller.to_owned(), addr);
        let task = tokio::spawn(accept(listener, Arc::downgrade(self), caller.to_owned()));
        self.tasks.lock().push(task);
        Ok(format!("http://{addr}"))
    }

    /// Forwards one request of `caller`, counts it, and injects the fault in force, if any.
    /// `Err`: the endpoint did not answer (the caller's connection is closed).
    async fn forward(
        &self,
        caller: &str,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, String> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the request: {e}"))?
            .to_bytes();
        let operation = Operation::of(&parts.headers, &body);
        let mut seen = Seen {
            request_bytes: body.len() as u64,
            ..Seen::default()
        };
        let fault = self.faults.choose(caller, &operation);
        seen.injected = fault.is_some();
        match &fault {
            Some(fault @ (Fault::Throttle | Fault::ServerError | Fault::Deny)) => {
                let answer = error_response(operation.service, fault);
                seen.status = answer.status().as_u16();
                self.tally.count(caller, &operation, &seen);
                return Ok(answer);
            }
            Some(Fault::Slow(delay)) => tokio::time::sleep(*delay).await,
            _ => {}
        }
        let Some(upstream) = self.upstreams.of(operation.service) else {
            self.tally.count(caller, &operation, &seen);
            return Err(format!("no endpoint for {}", operation.service.as_str()));
        };
        let mut uri = upstream.clone().into_parts();
        uri.path_and_query = parts.uri.path_and_query().cloned();
        let uri = Uri::from_parts(uri).map_err(|e| e.to_string())?;
        let mut outgoing = Request::builder().method(parts.method).uri(uri);
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name) && name != HOST {
                outgoing = outgoing.header(name, value);
            }
        }
        if let Some(authority) = upstream.authority() {
            outgoing = outgoing.header(HOST, authority.as_str());
        }
        let outgoing = outgoing.body(Full::new(body)).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let answer = self.client.request(outgoing).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                seen.upstream = started.elapsed();
                self.tally.count(caller, &operation, &seen);
                return Err(format!("the endpoint did not answer: {err}"));
            }
        };
        let (mut parts, body) = answer.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => {
                seen.upstream = started.elapsed();
                self.tally.count(caller, &operation, &seen);
                return Err(format!("reading the answer: {err}"));
            }
        };
        seen.upstream = started.elapsed();
        seen.status = parts.status.as_u16();
        seen.response_bytes = body.len() as u64;
        if operation.service == Service::Sqs && operation.name == "ReceiveMessage" {
            seen.messages = operation::messages_received(&body);
        }
        if fault == Some(Fault::LoseAnswer) {
            let answer = error_response(operation.service, &Fault::ServerError);
            seen.status = answer.status().as_u16();
            self.tally.count(caller, &operation, &seen);
            return Ok(answer);
        }
        self.tally.count(caller, &operation, &seen);
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        parts.headers.remove(CONTENT_LENGTH);
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

fn error_response(service: Service, fault: &Fault) -> Response<Full<Bytes>> {
    let (status, content_type, body) = faults::error_answer(service, fault);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

/// Serves `caller`'s port until the proxy is gone.
async fn accept(
    listener: tokio::net::TcpListener,
    proxy: std::sync::Weak<EndpointProxy>,
    caller: String,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (proxy, caller) = (proxy.clone(), caller.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (proxy, caller) = (proxy.clone(), caller.clone());
                async move {
                    let Some(proxy) = proxy.upgrade() else {
                        return Err("the proxy is stopped".to_owned());
                    };
                    proxy.forward(&caller, request).await
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in endpoint that answers every request with what it received, and counts them.
    async fn echo_endpoint() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let counter = counter.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let host = request
                                .headers()
                                .get(HOST)
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let path = request.uri().path().to_owned();
                            let body = request.into_body().collect().await?.to_bytes();
                            let answer = serde_json::json!({
                                "host": host,
                                "path": path,
                                "body": String::from_utf8_lossy(&body),
                                "Messages": [{"MessageId": "m1"}],
                            });
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(
                                answer.to_string(),
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn upstreams(url: &str) -> Upstreams {
        Upstreams::from_vars(&BTreeMap::from([(
            "AWS_ENDPOINT_URL".to_owned(),
            url.to_owned(),
        )]))
        .expect("valid")
        .expect("an emulator endpoint")
    }

    async fn send(
        endpoint: &str,
        target: &str,
        body: &str,
    ) -> Result<(u16, serde_json::Value), String> {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let request = Request::post(format!("{endpoint}/some/path"))
            .header("x-amz-target", target)
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let answer = client.request(request).await.map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
    }

    #[test]
    fn only_plain_http_emulator_endpoints_are_proxied() {
        let vars = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(
            Upstreams::from_vars(&vars(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]))
                .expect("valid")
                .is_some()
        );
        // No endpoint: the SDK goes to AWS, which a proxy would break (SigV4 signs the host).
        assert!(Upstreams::from_vars(&vars(&[])).expect("valid").is_none());
        assert!(
            Upstreams::from_vars(&vars(&[("AWS_ENDPOINT_URL", "https://localhost:4566")]))
                .expect("valid")
                .is_none()
        );
        // One service's endpoint alone leaves the others going to AWS.
        assert!(
            Upstreams::from_vars(&vars(&[(
                "AWS_ENDPOINT_URL_DYNAMODB",
                "http://127.0.0.1:8000"
            )]))
            .expect("valid")
            .is_none()
        );
        let split = Upstreams::from_vars(&vars(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]))
        .expect("valid")
        .expect("proxied");
        assert_eq!(
            split.of(Service::DynamoDb).map(|u| u.to_string()),
            Some("http://127.0.0.1:8000/".to_owned())
        );
        assert_eq!(
            split.of(Service::Sqs).map(|u| u.to_string()),
            Some("http://127.0.0.1:5000/".to_owned())
        );
        assert!(Upstreams::from_vars(&vars(&[("AWS_ENDPOINT_URL", "not a url")])).is_err());
    }

    #[tokio::test]
    async fn requests_are_forwarded_unchanged_and_counted_by_caller() {
        let (upstream, seen) = echo_endpoint().await;
        let proxy = Arc::new(EndpointProxy::new(upstreams(&upstream)));
        let payment = proxy.endpoint_for("PaymentFunction").await.expect("port");
        let source = proxy
            .endpoint_for("PaymentFunction event source")
            .await
            .expect("port");
        assert_eq!(
            proxy.endpoint_for("PaymentFunction").await.expect("port"),
            payment,
            "one port a caller"
        );
        let (status, echoed) = send(&payment, "DynamoDB_20120810.PutItem", "{\"Item\":{}}")
            .await
            .expect("answered");
        assert_eq!(status, 200);
        assert_eq!(echoed["path"], "/some/path");
        assert_eq!(echoed["body"], "{\"Item\":{}}");
        assert_eq!(
            echoed["host"],
            upstream.trim_start_matches("http://"),
            "Host names the endpoint"
        );
        send(&source, "AmazonSQS.ReceiveMessage", "{}")
            .await
            .expect("answered");
        let usage = proxy.tally().snapshot();
        let get = |caller: &str, operation: &str| {
            usage
                .iter()
                .find(|(k, _)| k.caller == caller && k.operation == operation)
                .map(|(_, u)| u.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("PaymentFunction", "PutItem").requests, 1);
        let receives = get("PaymentFunction event source", "ReceiveMessage");
        assert_eq!((receives.requests, receives.messages), (1, 1));
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn injected_faults_answer_in_the_protocol_or_lose_the_answer() {
        let (upstream, seen) = echo_endpoint().await;
        let proxy = Arc::new(EndpointProxy::new(upstreams(&upstream)));
        let endpoint = proxy.endpoint_for("InventoryFunction").await.expect("port");
        let rule = |fault| FaultRule {
            caller: Some("Inventory".into()),
            service: Some(Service::DynamoDb),
            operations: vec![],
            probability: 1.0,
            fault,
        };
        // Throttled: answered by the proxy, never forwarded.
        proxy.faults().set(vec![rule(Fault::Throttle)]);
        let (status, body) = send(&endpoint, "DynamoDB_20120810.PutItem", "{}")
            .await
            .expect("answered");
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "ProvisionedThroughputExceededException");
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        // Lost answer: forwarded (the work happens), the caller hears a 500.
        proxy.faults().set(vec![rule(Fault::LoseAnswer)]);
        let (status, _) = send(&endpoint, "DynamoDB_20120810.PutItem", "{}")
            .await
            .expect("answered");
        assert_eq!(status, 500);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        // Other services pass.
        let (status, _) = send(&endpoint, "AmazonSQS.SendMessage", "{}")
            .await
            .expect("answered");
        assert_eq!(status, 200);
        let injected: u64 = proxy.tally().snapshot().values().map(|u| u.injected).sum();
        assert_eq!(injected, 2);
    }

    #[tokio::test]
    async fn an_endpoint_that_is_down_closes_the_callers_connection() {
        // A port nothing listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let proxy = Arc::new(EndpointProxy::new(upstreams(&format!("http://{closed}"))));
        let endpoint = proxy.endpoint_for("PaymentFunction").await.expect("port");
        let result = send(&endpoint, "DynamoDB_20120810.GetItem", "{}").await;
        assert!(result.is_err(), "{result:?}");
        let usage = proxy.tally().snapshot();
        assert_eq!(usage.values().map(|u| u.failed).sum::<u64>(), 1);
    }
}
