//! The HTTPS client every SDK client of a process shares, trusting the platform's CA bundle
//! read from one file.
//!
//! Why not the SDK's default client: it finds the platform's roots with `rustls-native-certs`,
//! which on Linux reads the CA bundle *and then every file in the certificates folder* (on
//! Debian about 140 more files, each a copy of a certificate already in the bundle) before the
//! first request: 2 to 3 ms of a 9 ms cold start (`make bench`). One file holds them all.
//!
//! And why the roots are checked here: the SDK's client builds a throwaway TLS connector (every
//! root parsed again) to check *each* SDK client's configuration, one per `Client::from_conf`
//! — four or five per function — before the first request builds the one it keeps. That check
//! exists to load the platform's roots at start rather than at the first request; roots read
//! from the bundle are already loaded, and checked once, by [`TrustRoots::platform`], so
//! [`OnceValidated`] lets the SDK's checks through for them, and runs the SDK's check once (for
//! the first SDK client) when the SDK loads the roots itself.
//!
//! Which file: `SSL_CERT_FILE` when set (as OpenSSL and `rustls-native-certs` honour it), else
//! the first bundle of [`BUNDLES`] that exists. With only `SSL_CERT_DIR` set, or no bundle
//! found, or a bundle without one usable certificate, the client falls back to the SDK's own
//! loading, so a platform this does not know still connects.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Where Linux distributions and macOS keep the CA bundle, in the order `openssl-probe` tries
/// them; Lambda's Amazon Linux 2023 is the first.
pub const BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The roots an HTTPS client trusts, and where they came from.
#[derive(Clone, Debug)]
pub struct TrustRoots {
    /// The bundle read, or `None` when the SDK's own loading is used.
    pub bundle: Option<PathBuf>,
    /// The certificates of the bundle (0 when the SDK's own loading is used).
    pub certificates: usize,
    store: TrustStore,
}

impl TrustRoots {
    /// The platform's roots: the bundle `SSL_CERT_FILE` names, else the first of [`BUNDLES`].
    pub fn platform() -> Self {
        Self::choose(
            std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
            std::env::var_os("SSL_CERT_DIR").is_some(),
            BUNDLES.iter().map(Path::new),
        )
    }

    fn choose<'a>(
        cert_file: Option<PathBuf>,
        cert_dir_set: bool,
        mut bundles: impl Iterator<Item = &'a Path>,
    ) -> Self {
        let bundle = match cert_file {
            Some(file) => Some(file),
            // Someone pointed at a folder of certificates: read it as OpenSSL would.
            None if cert_dir_set => None,
            None => bundles.find(|path| path.is_file()).map(Path::to_path_buf),
        };
        let Some(bundle) = bundle else {
            return Self::native();
        };
        match std::fs::read(&bundle) {
            Ok(pem) => Self::from_bundle(bundle, pem),
            Err(err) => {
                tracing::warn!(bundle = %bundle.display(), error = %err, "cannot read the CA bundle; loading the platform's roots the SDK's way");
                Self::native()
            }
        }
    }

    /// The roots of `pem`, a bundle read from `bundle`.
    fn from_bundle(bundle: PathBuf, pem: Vec<u8>) -> Self {
        match check(&pem) {
            Ok(certificates) if certificates > 0 => TrustRoots {
                bundle: Some(bundle),
                certificates,
                store: TrustStore::empty().with_pem_certificate(pem),
            },
            Ok(_) => {
                tracing::warn!(bundle = %bundle.display(), "no certificate in the CA bundle; loading the platform's roots the SDK's way");
                Self::native()
            }
            Err(why) => {
                tracing::warn!(bundle = %bundle.display(), %why, "a certificate of the CA bundle cannot be a root; loading the platform's roots the SDK's way, which skips it");
                Self::native()
            }
        }
    }

    /// The SDK's own loading of the platform's roots.
    fn native() -> Self {
        TrustRoots {
            bundle: None,
            certificates: 0,
            store: TrustStore::default(),
        }
    }

    /// An HTTPS client (rustls with aws-lc, as the SDK's default) trusting these roots, shared
    /// by every SDK client built from it; the SDK's check of it (a throwaway TLS connector per
    /// SDK client) runs at most once, and not at all for roots read from a bundle.
    pub fn http_client(self) -> SharedHttpClient {
        let checked = self.bundle.is_some();
        let provider = tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc);
        let builder = aws_smithy_http_client::Builder::new().tls_provider(provider);
        let client = match TlsContext::builder().with_trust_store(self.store).build() {
            Ok(context) => builder.tls_context(context).build_https(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot use the CA bundle; loading the platform's roots the SDK's way");
                builder.build_https()
            }
        };
        SharedHttpClient::new(OnceValidated::new(client, checked))
    }
}

/// An HTTP client whose base-configuration check runs at most once: not at all if its roots
/// were `checked` already, else for the first SDK client built from it. The check (building a
/// TLS connector and dropping it) depends on nothing but the HTTP client itself, so repeating
/// it for every SDK client proves nothing new; connectors for requests are built and cached by
/// the inner client as before.
#[derive(Debug)]
pub(super) struct OnceValidated {
    inner: SharedHttpClient,
    validated: AtomicBool,
}

impl OnceValidated {
    /// Wraps `inner`, whose roots are `checked` already or not.
    pub(super) fn new(inner: SharedHttpClient, checked: bool) -> Self {
        OnceValidated {
            inner,
            validated: AtomicBool::new(checked),
        }
    }
}

impl HttpClient for OnceValidated {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        if self.validated.load(Ordering::Acquire) {
            return Ok(());
        }
        self.inner.validate_base_client_config(components, cfg)?;
        self.validated.store(true, Ordering::Release);
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// How many certificates `pem` holds, if rustls takes every one as a trust anchor. Checked
/// here because the SDK's client panics at its first connection on one it cannot parse; the
/// SDK's own loading skips such a certificate instead, so a bundle with one falls back to it.
fn check(pem: &[u8]) -> Result<usize, String> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der = certificate.map_err(|err| format!("certificate {index}: {err}"))?;
        roots
            .add(der)
            .map_err(|err| format!("certificate {index}: {err}"))?;
    }
    Ok(roots.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate (the rustls test suite's kind of root), generated for these
    /// tests with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes`.
    const ROOT: &str = include_str!("../../tests/fixtures/test-root-ca.pem");

    #[test]
    fn a_bundle_is_used_only_if_every_certificate_in_it_can_be_a_root() {
        let bundle = format!("# a comment\n{ROOT}\n{ROOT}");
        assert_eq!(check(bundle.as_bytes()), Ok(2));
        let roots = TrustRoots::from_bundle("/b".into(), bundle.into_bytes());
        assert_eq!(
            (roots.bundle.as_deref(), roots.certificates),
            (Some(Path::new("/b")), 2)
        );

        let garbage =
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let broken = format!("{ROOT}\n{garbage}");
        assert!(
            check(broken.as_bytes())
                .unwrap_err()
                .contains("certificate 1")
        );
        let roots = TrustRoots::from_bundle("/b".into(), broken.into_bytes());
        assert!(
            roots.bundle.is_none(),
            "the SDK's loading, which skips what it cannot use"
        );
    }

    /// An HTTP client that counts the SDK's checks of it and answers nothing.
    #[derive(Debug, Default)]
    struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is made")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// How often the SDK checks an HTTP client wrapped in [`OnceValidated`] while three SDK
    /// clients are built from it.
    fn checks_for_three_sdk_clients(roots_checked: bool) -> usize {
        let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shared = SharedHttpClient::new(OnceValidated::new(
            SharedHttpClient::new(Counting(checks.clone())),
            roots_checked,
        ));
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(shared)
            .build();
        let _dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let _sns = aws_sdk_sns::Client::new(&sdk);
        let _sqs = aws_sdk_sqs::Client::new(&sdk);
        checks.load(Ordering::SeqCst)
    }

    #[test]
    fn the_sdk_checks_the_http_client_once_or_not_at_all_when_its_roots_were_checked() {
        assert_eq!(checks_for_three_sdk_clients(false), 1);
        assert_eq!(checks_for_three_sdk_clients(true), 0);
    }

    #[test]
    fn a_bundle_without_a_certificate_falls_back_to_the_sdks_loading() {
        let roots = TrustRoots::from_bundle("/x".into(), b"no certificates here".to_vec());
        assert!(roots.bundle.is_none());
    }

    #[test]
    fn ssl_cert_file_wins_then_ssl_cert_dir_then_the_first_bundle_found() {
        let dir = std::env::temp_dir().join(format!("orderflow-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, ROOT).unwrap();
        let missing = dir.join("missing.pem");
        let candidates = [missing.as_path(), bundle.as_path()];

        let found = TrustRoots::choose(None, false, candidates.iter().copied());
        assert_eq!(found.bundle.as_deref(), Some(bundle.as_path()));
        assert_eq!(found.certificates, 1);

        let named = TrustRoots::choose(Some(bundle.clone()), true, std::iter::empty());
        assert_eq!(named.bundle.as_deref(), Some(bundle.as_path()));

        let folder = TrustRoots::choose(None, true, candidates.iter().copied());
        assert!(
            folder.bundle.is_none(),
            "SSL_CERT_DIR alone: the SDK's loading"
        );

        let unreadable = TrustRoots::choose(Some(missing), false, std::iter::empty());
        assert!(unreadable.bundle.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
