//! The trust roots of the HTTPS client every SDK client of a process shares, read from the
//! platform's CA bundle in one file and parsed once, at start.
//!
//! Why not the SDK's loading: it finds the platform's roots with `rustls-native-certs`, which on
//! Linux reads the CA bundle *and then every file in the certificates folder* (on Debian about
//! 140 more files, each a copy of a certificate already in the bundle) before the first request:
//! 2 to 3 ms of a 9 ms cold start (`make bench`). One file holds them all. The SDK's client also
//! parsed every root again for each SDK client it checked (a throwaway TLS connector per
//! `Client::from_conf`) and once more at the first request; [`super::http1`] builds its TLS
//! configuration once from the roots parsed here. The bundle's base64 is decoded by
//! [`super::pem`], 7 times fewer instructions than `rustls-pki-types`' constant-time reader.
//!
//! Which file: `SSL_CERT_FILE` when set (as OpenSSL and `rustls-native-certs` honour it), else
//! the first bundle of [`BUNDLES`] that exists. With only `SSL_CERT_DIR` set, or no bundle
//! found, or a bundle rustls cannot take whole, the roots are loaded the SDK's way
//! (`rustls-native-certs`, which skips what it cannot use), so a platform this does not know
//! still connects.

use std::path::{Path, PathBuf};

use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::http1::Http1Client;

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
    /// The bundle read, or `None` when the platform's roots were loaded the SDK's way.
    pub bundle: Option<PathBuf>,
    /// The certificates trusted.
    pub certificates: usize,
    roots: RootCertStore,
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
            Ok(pem) => Self::from_bundle(bundle, &pem),
            Err(err) => {
                tracing::warn!(bundle = %bundle.display(), error = %err, "cannot read the CA bundle; loading the platform's roots the SDK's way");
                Self::native()
            }
        }
    }

    /// The roots of `pem`, a bundle read from `bundle`.
    pub(super) fn from_bundle(bundle: PathBuf, pem: &[u8]) -> Self {
        match parse(pem) {
            Ok(roots) if !roots.is_empty() => TrustRoots {
                bundle: Some(bundle),
                certificates: roots.len(),
                roots,
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

    /// The platform's roots as the SDK loads them (`rustls-native-certs`: `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, the platform's bundle and folder), every usable certificate.
    fn native() -> Self {
        let found = rustls_native_certs::load_native_certs();
        for err in &found.errors {
            tracing::warn!(error = %err, "while loading the platform's CA certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, skipped) = roots.add_parsable_certificates(found.certs);
        if skipped > 0 {
            tracing::warn!(
                added,
                skipped,
                "some platform CA certificates cannot be roots; skipped"
            );
        }
        TrustRoots {
            bundle: None,
            certificates: roots.len(),
            roots,
        }
    }

    /// The HTTP client every SDK client of the process shares: HTTP/1.1 over rustls, trusting
    /// these roots, its TLS configuration built now rather than at the first request.
    pub fn http_client(self) -> SharedHttpClient {
        SharedHttpClient::new(Http1Client::new(self.roots))
    }
}

/// Every certificate of `pem` as a root, or why one cannot be: a bundle rustls cannot take
/// whole is loaded the SDK's way, which skips what it cannot use.
fn parse(pem: &[u8]) -> Result<RootCertStore, String> {
    let certificates = match super::pem::certificates(pem) {
        Some(certificates) => certificates,
        None => CertificateDer::pem_slice_iter(pem)
            .enumerate()
            .map(|(index, c)| c.map_err(|err| format!("certificate {index}: {err}")))
            .collect::<Result<_, _>>()?,
    };
    let mut roots = RootCertStore::empty();
    for (index, der) in certificates.into_iter().enumerate() {
        roots
            .add(der)
            .map_err(|err| format!("certificate {index}: {err}"))?;
    }
    Ok(roots)
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
        assert_eq!(parse(bundle.as_bytes()).map(|r| r.len()), Ok(2));
        let roots = TrustRoots::from_bundle("/b".into(), bundle.as_bytes());
        assert_eq!(
            (roots.bundle.as_deref(), roots.certificates),
            (Some(Path::new("/b")), 2)
        );

        let garbage =
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let broken = format!("{ROOT}\n{garbage}");
        assert!(
            parse(broken.as_bytes())
                .unwrap_err()
                .contains("certificate 1")
        );
        let roots = TrustRoots::from_bundle("/b".into(), broken.as_bytes());
        assert!(
            roots.bundle.is_none(),
            "the SDK's loading, which skips what it cannot use"
        );
    }

    #[test]
    fn a_bundle_without_a_certificate_falls_back_to_the_sdks_loading() {
        let roots = TrustRoots::from_bundle("/x".into(), b"no certificates here");
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
