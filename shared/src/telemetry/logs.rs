//! Structured logging: JSON lines in Lambda, compact text elsewhere.

use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs a `tracing` subscriber writing to standard error.
///
/// The filter comes from `RUST_LOG` (`info`, or per target: `orderflow=debug,info`), else from
/// Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `default_level`. Inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) or with
/// `AWS_LAMBDA_LOG_FORMAT=JSON` the output is [`json_lines`], which CloudWatch Logs
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
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second call (tests, a library user's own subscriber) is not an error.
    let _ = if json {
        registry.with(json_lines(std::io::stderr)).try_init()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .compact();
        registry.with(lines).try_init()
    };
}

/// The JSON lines a function writes, one object a line, flat as Powertools Logger writes them:
/// `timestamp` (RFC 3339, UTC), `level`, `message`, the event's own fields, and the fields of
/// every span it is in, each once: the runtime's `requestId` and `xrayTraceId`, the
/// invocation's `function` and `cold_start`, a record's `message_id`, `event_type`,
/// `correlation_id`, …. A Logs Insights query reads them by name (`filter correlation_id =
/// …`).
///
/// Flat, not nested: `tracing-subscriber`'s JSON format writes a record's span twice (as the
/// current span and again in the span list): a `record done` line took some 1,000 bytes, flat
/// it takes some 650 (CloudWatch Logs bills ingestion by the byte). `name` is the innermost
/// span's name. An event field must not share a name with a field of a
/// span it is in, or the line has that key twice.
pub fn json_lines<S, W>(make_writer: W) -> json_subscriber::JsonLayer<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    let mut layer = json_subscriber::JsonLayer::new(make_writer);
    layer
        .with_timer("timestamp", SystemTime)
        .with_level("level")
        .with_flattened_event()
        .with_top_level_flattened_span_list();
    layer
}
