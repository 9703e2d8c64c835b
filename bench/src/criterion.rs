//! criterion's results (`target/criterion/**/new/`): each benchmark's median.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Every benchmark's median, by its full id (`group/function`).
pub(crate) fn read(dir: &Path) -> anyhow::Result<BTreeMap<String, Duration>> {
    let mut medians = BTreeMap::new();
    visit(dir, &mut medians)
        .with_context(|| format!("cannot read criterion's results in {}", dir.display()))?;
    if medians.is_empty() {
        anyhow::bail!(
            "no criterion results in {} (run cargo bench first)",
            dir.display()
        );
    }
    Ok(medians)
}

fn visit(dir: &Path, medians: &mut BTreeMap<String, Duration>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let benchmark: Benchmark =
                serde_json::from_slice(&std::fs::read(path.join("benchmark.json"))?)?;
            let estimates: Estimates =
                serde_json::from_slice(&std::fs::read(path.join("estimates.json"))?)?;
            medians.insert(
                benchmark.full_id,
                Duration::from_secs_f64(estimates.median.point_estimate / 1e9),
            );
        } else {
            visit(&path, medians)?;
        }
    }
    Ok(())
}
