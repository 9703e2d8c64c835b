//! Each function's output in a file of its own (`<dir>/<Function>.log`), a line per invocation
//! in `<dir>/invocations.log`, and with `-v` everything on the terminal, prefixed by the
//! function and coloured.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where logs go.
#[derive(Clone, Debug)]
pub struct LogSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    verbose: bool,
    colour: bool,
    files: Mutex<HashMap<String, File>>,
}

const COLOURS: [&str; 6] = ["36", "33", "35", "32", "34", "31"];

impl LogSink {
    /// Logs under `dir` (created); `verbose` also prints them.
    pub fn new(dir: &Path, verbose: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(LogSink {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                verbose,
                colour: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                files: Mutex::default(),
            }),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn write(&self, file: &str, text: &str) {
        let Ok(mut files) = self.inner.files.lock() else {
            return;
        };
        if !files.contains_key(file) {
            let path = self.inner.dir.join(format!("{file}.log"));
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(handle) => {
                    files.insert(file.to_owned(), handle);
                }
                Err(_) => return,
            }
        }
        if let Some(handle) = files.get_mut(file) {
            let _ = writeln!(handle, "{text}");
        }
    }

    fn print(&self, name: &str, text: &str) {
        if !self.inner.verbose {
            return;
        }
        if self.inner.colour {
            let colour = COLOURS[name.bytes().map(usize::from).sum::<usize>() % COLOURS.len()];
            eprintln!("\x1b[{colour}m{name:>14}\x1b[0m | {text}");
        } else {
            eprintln!("{name:>14} | {text}");
        }
    }

    /// A line a function wrote.
    pub fn line(&self, function: &str, text: &str) {
        self.write(function, text);
        self.print(function, text);
    }

    /// One invocation's summary.
    pub fn invocation(
        &self,
        function: &str,
        request_id: &str,
        records: usize,
        outcome: &str,
        elapsed: Duration,
    ) {
        let text = format!(
            "{} {function} request {request_id} records {records} {} ms: {outcome}",
            chrono::Utc::now().format("%H:%M:%S%.3f"),
            elapsed.as_millis()
        );
        self.write("invocations", &text);
        self.write(function, &format!("-- {text}"));
        self.print(
            function,
            &format!(
                "-- {outcome} ({records} records, {} ms)",
                elapsed.as_millis()
            ),
        );
    }

    /// A line of the runner's own.
    pub fn runner(&self, text: &str) {
        self.write("runner", text);
        self.print("runner", text);
    }
}

/// One function's log file, read.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionLog {
    /// The function (the file's name without `.log`).
    pub function: String,
    /// The stack folder it is in, when it is in one under the folder read.
    pub stack: Option<String>,
    /// Its lines.
    pub content: String,
}

/// Every function log (`<Function>.log`) in `dir` and in its subdirectories (one per stack),
/// read, in path order; a file that cannot be read is left out.
pub fn function_logs(dir: &Path) -> Vec<FunctionLog> {
    function_log_files(dir)
        .into_iter()
        .filter_map(|file| {
            let content = std::fs::read_to_string(&file).ok()?;
            let name = |path: &Path| path.file_name().map(|s| s.to_string_lossy().into_owned());
            Some(FunctionLog {
                function: file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                stack: file.parent().filter(|p| *p != dir).and_then(name),
                content,
            })
        })
        .collect()
}

/// The function log files (`<Function>.log`) in `dir` and in its subdirectories (one per
/// stack), sorted.
fn function_log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        dirs.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir()),
        );
    }
    for dir in dirs {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with("Function.log")),
            );
        }
    }
    files.sort();
    files
}
