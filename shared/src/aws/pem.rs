//! The certificates of a PEM bundle, decoded with SIMD base64.
//!
//! Why not only `rustls-pki-types`' reader: its base64 decoder is constant-time, as a reader of
//! private keys must be, and costs about 35 instructions a byte. A CA bundle is public and some
//! 220 KB: decoding it that way was 8 of the 13 million instructions a function ran before its
//! first request (callgrind, `make bench`'s environment). `base64-simd` (already linked by the
//! SDK's `aws-smithy-types`) decodes a bundle in about 1 million.
//!
//! Only the common layout takes this path: `CERTIFICATE` sections whose lines hold base64 and
//! nothing else, each marker at the start of its line. Anything else (headers in a section, a
//! section never closed, a character outside base64, an indented marker) returns `None`, and
//! the caller reads the bundle with `rustls-pki-types`, whose answer is the reference (the
//! tests check both agree on the platform's bundle).

use memchr::memmem::Finder;
use rustls_pki_types::CertificateDer;

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// Every `CERTIFICATE` section of `pem`, in order, or `None` when a section is not in the
/// common layout. Text outside sections, and sections of other labels, are skipped, as
/// `rustls-pki-types` skips them.
pub(super) fn certificates(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let begin = Finder::new(BEGIN);
    let end = Finder::new(END);
    let mut certificates = Vec::new();
    // One buffer for every section's base64 without its line breaks.
    let mut base64 = Vec::new();
    let mut at = 0;
    while let Some(start) = begin.find(&pem[at..]).map(|found| at + found) {
        // A marker that does not open its line is one the reference reader does not see.
        if start > 0 && pem[start - 1] != b'\n' {
            return None;
        }
        let section = &pem[start + BEGIN.len()..];
        let stop = end.find(section)?;
        base64.clear();
        join_lines(&section[..stop], &mut base64);
        let der = base64_simd::STANDARD.decode_to_vec(&base64).ok()?;
        certificates.push(CertificateDer::from(der));
        at = start + BEGIN.len() + stop + END.len();
    }
    Some(certificates)
}

/// Appends `text`'s lines to `out` without their line breaks and surrounding spaces (`\r\n`
/// line ends included); a space inside a line stays, and fails the decoding.
fn join_lines(text: &[u8], out: &mut Vec<u8>) {
    let mut from = 0;
    for line_end in memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len())) {
        out.extend_from_slice(text[from..line_end].trim_ascii());
        from = line_end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    const ROOT: &str = include_str!("../../tests/fixtures/test-root-ca.pem");

    /// What `rustls-pki-types` reads from `pem`: the reference.
    fn reference(pem: &[u8]) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn reads_what_rustls_pki_types_reads_from_the_platforms_bundle() {
        let bundles = crate::aws::BUNDLES
            .iter()
            .filter_map(|b| std::fs::read(b).ok());
        let mut read = 0;
        for pem in bundles {
            let fast = certificates(&pem).expect("the platform's bundle is in the common layout");
            assert!(!fast.is_empty());
            assert_eq!(fast, reference(&pem));
            read += 1;
        }
        // The fixture at least, where the machine has no bundle.
        assert_eq!(
            certificates(ROOT.as_bytes()).unwrap(),
            reference(ROOT.as_bytes())
        );
        eprintln!("compared {read} platform bundles");
    }

    #[test]
    fn skips_text_and_other_labels_and_takes_crlf_line_ends() {
        let crlf = ROOT.replace('\n', "\r\n");
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let trusted =
            "-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n";
        let bundle = format!("# ISRG Root X1\n{ROOT}\n{key}{trusted}{crlf}trailing text");
        let fast = certificates(bundle.as_bytes()).unwrap();
        assert_eq!(fast.len(), 2);
        assert_eq!(fast, reference(bundle.as_bytes()));
        assert_eq!(certificates(b"no certificates here"), Some(vec![]));
    }

    #[test]
    fn a_section_outside_the_common_layout_is_left_to_the_reference_reader() {
        let unclosed = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        let inner_space = "-----BEGIN CERTIFICATE-----\nAA AA\n-----END CERTIFICATE-----\n";
        let not_base64 = "-----BEGIN CERTIFICATE-----\nA*AA\n-----END CERTIFICATE-----\n";
        let indented = format!("  {ROOT}");
        for pem in [unclosed, inner_space, not_base64, &indented] {
            assert_eq!(certificates(pem.as_bytes()), None, "{pem}");
        }
    }
}
