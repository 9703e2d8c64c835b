//! The HTTP client every SDK client of a process shares: HTTP/1.1 over rustls (ring), one
//! connection pool, the trust roots read at start ([`super::TrustRoots`]).
//!
//! Why not the SDK's default client: DynamoDB, SNS and SQS speak HTTP/1.1, yet the default
//! client always links HTTP/2 (`h2`, about 0.5 MB) and aws-lc (about 0.8 MB with its curve
//! tables), and builds its TLS configuration on the first request. A Lambda binary pays for
//! all of it in size and cold start (`make bench`). This is the same stack the SDK uses —
//! hyper's pooled client, hyper-rustls, rustls — set up for HTTP/1.1 only, with ring, and the
//! TLS configuration built once at start, plugged in through the SDK's own `HttpClient` trait.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;

type Pool = Client<HttpsConnector<TcpConnector>, SdkBody>;

/// A connector's timeouts: connect, read.
type Timeouts = (Option<Duration>, Option<Duration>);

/// An HTTP/1.1 client over rustls, shared by every SDK client built from one `SdkConfig`.
#[derive(Clone, Debug)]
pub(super) struct Http1Client {
    tls: Arc<rustls::ClientConfig>,
    /// One pool per distinct timeout settings (in practice one: every client has ours).
    pools: Arc<Mutex<HashMap<Timeouts, SharedHttpConnector>>>,
}

impl Http1Client {
    /// A client trusting `roots`.
    pub(super) fn new(roots: rustls::RootCertStore) -> Self {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let tls = match tls {
            Ok(config) => config,
            // ring supports every default protocol version; kept as a fallback all the same.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        Http1Client {
            tls: Arc::new(tls),
            pools: Arc::default(),
        }
    }

    fn pool(&self, settings: &HttpConnectorSettings) -> Pool {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(settings.connect_timeout());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Client::builder(TokioExecutor::new())
            // Lambda freezes an idle environment; a connection older than this is likely closed
            // at the other end by the time the environment thaws.
            .pool_idle_timeout(Duration::from_secs(50))
            .build(https)
    }
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let Ok(mut pools) = self.pools.lock() else {
            // Only a panic while holding the lock poisons it; a fresh pool still works.
            return SharedHttpConnector::new(Connector {
                pool: self.pool(settings),
                read_timeout: settings.read_timeout(),
            });
        };
        pools
            .entry(key)
            .or_insert_with(|| {
                SharedHttpConnector::new(Connector {
                    pool: self.pool(settings),
                    read_timeout: settings.read_timeout(),
                })
            })
            .clone()
    }
}

/// One pool of connections, with the read timeout of its settings.
#[derive(Clone, Debug)]
struct Connector {
    pool: Pool,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let pool = self.pool.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = pool.request(request);
            let response = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, response).await {
                    Ok(answered) => answered,
                    Err(elapsed) => return Err(ConnectorError::timeout(Box::new(elapsed))),
                },
                None => response.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|err| ConnectorError::other(err.into(), None)),
                Err(err) => Err(classify(err)),
            }
        })
    }
}

/// The SDK's view of a failed request: a timeout, an I/O failure (retried as transient), or
/// something else.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = source::<std::io::Error>(&err)
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        || source::<hyper::Error>(&err).is_some_and(hyper::Error::is_timeout);
    if timed_out {
        return ConnectorError::timeout(Box::new(err));
    }
    if err.is_connect()
        || source::<std::io::Error>(&err).is_some()
        || source::<hyper::Error>(&err).is_some_and(|e| e.is_closed() || e.is_canceled())
    {
        return ConnectorError::io(Box::new(err));
    }
    if source::<hyper::Error>(&err).is_some_and(hyper::Error::is_incomplete_message) {
        return ConnectorError::other(Box::new(err), Some(ErrorKind::TransientError));
    }
    ConnectorError::other(Box::new(err), None)
}

/// The first error of type `E` in `err`'s chain.
fn source<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::aws::TrustRoots;

    /// A CA made for the test, and a TLS configuration for `localhost` signed by it.
    fn certificates() -> (String, rustls::ServerConfig) {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().expect("server key");
        let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone()],
            rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key"),
        )
        .expect("server TLS");
        (ca_cert.pem(), config)
    }

    /// An HTTPS server on localhost answering every request as DynamoDB answers `ListTables`.
    async fn https_server(config: rustls::ServerConfig) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, count) = (acceptor.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_request| {
                        count.fetch_add(1, Ordering::SeqCst);
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(br#"{"TableNames":["orders"]}"#),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (format!("https://localhost:{port}"), answered)
    }

    fn dynamodb(roots: TrustRoots, endpoint: &str) -> aws_sdk_dynamodb::Client {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::for_tests(),
            ))
            .http_client(roots.http_client())
            .timeout_config(crate::aws::timeouts())
            .endpoint_url(endpoint)
            .build();
        aws_sdk_dynamodb::Client::new(&sdk)
    }

    #[tokio::test]
    async fn sdk_requests_go_over_tls_to_a_server_the_bundle_trusts() {
        let (ca, config) = certificates();
        let (endpoint, answered) = https_server(config).await;
        let roots = TrustRoots::from_bundle("/test/ca.pem".into(), ca.as_bytes());
        let client = dynamodb(roots, &endpoint);
        // Twice: the second request reuses the pooled connection.
        for _ in 0..2 {
            let tables = client
                .list_tables()
                .send()
                .await
                .expect("answered over TLS");
            assert_eq!(tables.table_names(), ["orders"]);
        }
        assert_eq!(answered.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_server_the_roots_do_not_trust_is_refused_as_a_transient_failure() {
        let (_, config) = certificates();
        let (endpoint, answered) = https_server(config).await;
        // Roots of another CA.
        let (other_ca, _) = certificates();
        let roots = TrustRoots::from_bundle("/test/other.pem".into(), other_ca.as_bytes());
        let err = dynamodb(roots, &endpoint)
            .list_tables()
            .send()
            .await
            .expect_err("an untrusted certificate");
        assert!(
            matches!(err, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)),
            "{err:?}"
        );
        assert_eq!(answered.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_endpoint_that_refuses_connections_is_an_io_failure_the_sdk_retries() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let roots = TrustRoots::from_bundle("/test/ca.pem".into(), certificates().0.as_bytes());
        let err = dynamodb(roots, &format!("http://{closed}"))
            .list_tables()
            .send()
            .await
            .expect_err("nothing listens");
        match &err {
            aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) => {
                assert!(failure.is_io(), "{err:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(crate::aws::is_transient(&err), "{err:?}");
    }
}
