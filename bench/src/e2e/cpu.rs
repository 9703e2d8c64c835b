//! CPU time of processes, read from Linux's `/proc/<pid>/stat`: where a run's time went
//! (the emulator, the runner, the function instances).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Linux reports CPU time in clock ticks of 1/100 s (`USER_HZ`, 100 on every architecture
/// Lambda runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// One process's CPU time so far: user + system, its own and (`children`) that of the
/// children it has waited for.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTime {
    /// Its own.
    pub(crate) own: Duration,
    /// Its waited-for children's.
    pub(crate) children: Duration,
}

/// Reads `/proc/<pid>/stat`; `None` if the process is gone.
pub(crate) fn of(pid: u32) -> Option<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state (3), ppid (4), … utime (14), stime (15), cutime (16), cstime (17).
    let tick = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let seconds = |t: f64| Duration::from_secs_f64(t / TICKS_PER_SECOND);
    Some(CpuTime {
        own: seconds(tick(14)? + tick(15)?),
        children: seconds(tick(16)? + tick(17)?),
    })
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `root` and every process descending from it that runs now.
pub(crate) fn tree(root: u32) -> BTreeSet<u32> {
    let mut parents: BTreeMap<u32, u32> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok())
                && let Some(parent) = parent_of(pid)
            {
                parents.insert(pid, parent);
            }
        }
    }
    let mut found = BTreeSet::from([root]);
    loop {
        let more: Vec<u32> = parents
            .iter()
            .filter(|(pid, parent)| found.contains(parent) && !found.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

/// CPU time of `root` and its descendants running now (their own time, and what their
/// finished children used).
pub(crate) fn of_tree(root: u32) -> Duration {
    tree(root)
        .into_iter()
        .filter_map(of)
        .map(|t| t.own + t.children)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_cpu_and_is_in_its_own_tree() {
        let me = std::process::id();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let cpu = of(me).expect("this process's stat");
        assert!(cpu.own >= Duration::from_millis(20), "{cpu:?}");
        assert!(tree(me).contains(&me));
        assert!(of_tree(me) >= cpu.own);
        assert_eq!(of(u32::MAX), None);
    }
}
