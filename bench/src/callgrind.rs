//! Instruction counts from callgrind (valgrind's `--tool=callgrind`, found on `PATH`): what a
//! program runs, the same on a busy host as on an idle one, where times on a shared 2-core host
//! move by a third from one run to the next.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long one program may run under valgrind (some 50 times slower than without).
const DEADLINE: Duration = Duration::from_secs(300);

/// `valgrind --tool=callgrind` about to run `program`; add its arguments and environment, then
/// [`count`].
pub(crate) fn command(program: &Path) -> anyhow::Result<Command> {
    let valgrind = find_on_path("valgrind").context("valgrind is not installed")?;
    let mut command = Command::new(valgrind);
    command
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(program);
    Ok(command)
}

/// How the counted program must end for its count to stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Exit status 0: it did all it was asked.
    Success,
    /// Any exit status, but not a signal: a function started against a closed Runtime API
    /// port ends with an error at its first request, which is the point measured.
    AnyExit,
}

/// Runs `command` (from [`command`]) to its end and returns the instructions it ran, if it
/// ended as `ending` says; `what` names it in errors.
pub(crate) fn count(mut command: Command, what: &str, ending: Ending) -> anyhow::Result<u64> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what} under valgrind"))?;
    let stderr = child.stderr.take().context("no stderr")?;
    // Read on a thread so a chatty program cannot fill the pipe and stall while we wait.
    let reader = thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        let exited = match child.try_wait() {
            Ok(exited) => exited,
            Err(err) => {
                let _ = child.kill();
                return Err(err).context(format!("cannot wait for {what} under valgrind"));
            }
        };
        if let Some(status) = exited {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{what} did not end within {} s under valgrind",
                DEADLINE.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap_or_default();
    // The report puts this text in a table cell: one line, no column separators.
    let tail = || {
        text.lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" / ")
            .replace('|', "/")
    };
    let ended_as_asked = match ending {
        Ending::Success => status.success(),
        Ending::AnyExit => status.code().is_some(),
    };
    if !ended_as_asked {
        bail!("{what} ended with {status} under valgrind: {}", tail());
    }
    instructions_in(&text).with_context(|| {
        format!(
            "callgrind printed no instruction count for {what} ({status}): {}",
            tail()
        )
    })
}

/// The total from callgrind's summary line (`==123== I   refs:      4,964,614`).
fn instructions_in(valgrind_stderr: &str) -> Option<u64> {
    let line = valgrind_stderr
        .lines()
        .find(|line| line.contains("I   refs:"))?;
    let digits: String = line
        .rsplit(':')
        .next()?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `program`'s path in a folder of `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|folder| folder.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::instructions_in;

    #[test]
    fn the_count_is_read_from_callgrinds_summary() {
        let stderr = "==15208== Callgrind, a call-graph generating cache profiler\n\
                      ==15208== Events    : Ir\n\
                      ==15208== Collected : 4965073\n\
                      ==15208==\n\
                      ==15208== I   refs:      4,965,073\n";
        assert_eq!(instructions_in(stderr), Some(4_965_073));
        assert_eq!(instructions_in("valgrind: command not found"), None);
    }
}
