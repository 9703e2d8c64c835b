//! Powertools for AWS Lambda (Python), measured by `bench/powertools_bench.py`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// What the script prints.
#[derive(Debug, Deserialize)]
pub(crate) struct Powertools {
    /// Per record, warm, from the event's bytes to the partial batch response.
    pub(crate) per_record_us: f64,
    /// Imports and the three boto3 clients in a fresh interpreter.
    pub(crate) cold_start_ms: f64,
    /// Python and package versions.
    pub(crate) versions: std::collections::BTreeMap<String, String>,
}

/// Runs `script` with `python` on `batch`.
pub(crate) fn measure(python: &Path, script: &Path, batch: &Path) -> anyhow::Result<Powertools> {
    let output = Command::new(python)
        .arg(script)
        .arg(batch)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{} printed no result", script.display()))
}
