//! A binary's size, and its size deflated as in a Lambda deployment zip (`bootstrap` alone).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Bytes on disk and deflated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Size {
    /// The stripped release binary.
    pub(crate) bytes: u64,
    /// Deflated at zip's default level (what the zip's one entry takes, headers aside).
    pub(crate) deflated: u64,
}

/// The size of `binary`.
pub(crate) fn of(binary: &Path) -> anyhow::Result<Size> {
    let contents =
        std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&contents)?;
    let deflated = encoder.finish()?.len() as u64;
    Ok(Size {
        bytes: contents.len() as u64,
        deflated,
    })
}
