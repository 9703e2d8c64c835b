//! Structured logging: JSON lines in Lambda, compact text elsewhere.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs a `tracing` subscriber writing to standard error.
///
/// The filter comes from `RUST_LOG` (`info`, or per target: `orderflow=debug,info`), else from
/// Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `default_level`. Inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) or with
/// `AWS_LAMBDA_LOG_FORMAT=JSON` the output is one JSON object per line, which CloudWatch Logs
/// Insights can query; elsewhere it is compact text. Calling it twice is harmless.
pub fn init(default_level: &str) {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .map(|level| level.to_ascii_lowercase())
        .unwrap_or_else(|_| default_level.to_owned());
    let filter = filter.parse::<Targets>().unwrap_or_else(|_| {
        default_level
            .parse::<Targets>()
            .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO))
    });
    let json = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second call (tests, a library user's own subscriber) is not an error.
    let _ = if json {
        registry.with(lines.json().flatten_event(true)).try_init()
    } else {
        registry.with(lines.compact()).try_init()
    };
}
