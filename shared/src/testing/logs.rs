//! Capturing what is logged, as the Lambda functions log it (JSON lines), for a test to read.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// Every line a [`LogCapture::subscriber`] writes, kept in memory.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Nothing captured yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A subscriber writing the JSON lines [`crate::telemetry::init`] writes inside Lambda
    /// ([`crate::telemetry::json_lines`]), at `info` (the functions' default level), into this
    /// capture. [`LogCapture::install`] installs it.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        use tracing_subscriber::layer::SubscriberExt;
        let writer = self.clone();
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(crate::telemetry::json_lines(move || writer.clone()))
    }

    /// Makes [`LogCapture::subscriber`] this thread's default until the guard is dropped, so
    /// that it sees what this thread logs even while other threads (the other tests of the
    /// binary) run the same code without a subscriber.
    ///
    /// While one dispatcher is registered, tracing caches a callsite's interest from the
    /// registering thread's view alone (`has_just_one` in tracing-core): a thread without a
    /// subscriber reaching a line first would cache it disabled for this capture too. The guard
    /// keeps a second dispatcher registered, so every registration asks all of them, and the
    /// interest cached before it was made is asked again.
    pub fn install(&self) -> CaptureGuard {
        let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let default = tracing::subscriber::set_default(self.subscriber());
        tracing::callsite::rebuild_interest_cache();
        CaptureGuard {
            _default: default,
            _second: second,
        }
    }

    /// Everything captured, as text.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Every captured line, parsed (a line that is not JSON is kept as a string).
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::from(line)))
            .collect()
    }
}

/// What [`LogCapture::install`] returns: the capture stays this thread's default while it lives.
#[must_use = "the capture stops when the guard is dropped"]
pub struct CaptureGuard {
    _default: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}
