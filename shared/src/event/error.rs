//! Why an event could not be read or written.

use super::EventType;

/// Why an event document was refused. Every variant names the field (as a JSON path such as
/// `data.items[0].quantity`) or the limit involved, so the message alone says what to fix.
///
/// All of these are permanent: the same bytes will fail the same way on every retry.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum EventError {
    /// The document is larger than one SNS message may be.
    #[error("event is {size} bytes, over the {limit}-byte SNS message limit")]
    TooLarge {
        /// Size of the document (with message attributes, when publishing).
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The bytes are not a JSON document.
    #[error("malformed JSON at line {line}, column {column}: {reason}")]
    MalformedJson {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// What the parser expected.
        reason: String,
    },
    /// A required field is absent (or `null`).
    #[error("missing field `{field}`")]
    MissingField {
        /// JSON path of the field.
        field: String,
    },
    /// A field is present but has the wrong type or breaks a rule.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `eventType` names no event this code knows.
    #[error("unknown eventType `{0}`")]
    UnknownEventType(String),
    /// `eventVersion` is not one this reader knows for the type (usually: newer than it).
    #[error(
        "unsupported eventVersion {version} for {event_type}: this reader knows versions {}..={}",
        known.start(), known.end()
    )]
    UnsupportedVersion {
        /// The event's type.
        event_type: EventType,
        /// The version it claims.
        version: u32,
        /// The versions this reader accepts.
        known: std::ops::RangeInclusive<u32>,
    },
}

impl EventError {
    /// A short, stable name for the kind of error, for logs, metrics and DLQ attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::TooLarge { .. } => "TooLarge",
            EventError::MalformedJson { .. } => "MalformedJson",
            EventError::MissingField { .. } => "MissingField",
            EventError::InvalidField { .. } => "InvalidField",
            EventError::UnknownEventType(_) => "UnknownEventType",
            EventError::UnsupportedVersion { .. } => "UnsupportedVersion",
        }
    }

    /// Whether retrying the same input could succeed: never, for a bad event.
    pub fn is_retryable(&self) -> bool {
        false
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EventError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Converts a serde error into a typed error at `prefix` + the path serde reached.
    pub(crate) fn from_serde(
        err: serde_path_to_error::Error<serde_json::Error>,
        prefix: &str,
    ) -> Self {
        let path = join_path(prefix, &err.path().to_string());
        Self::from_json(err.into_inner(), path)
    }

    /// Converts a `serde_json` error found at JSON path `path` into a typed error.
    pub(crate) fn from_json(inner: serde_json::Error, path: String) -> Self {
        let reason = strip_location(&inner);
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return EventError::MalformedJson {
                line: inner.line(),
                column: inner.column(),
                reason,
            };
        }
        match missing_field_name(&reason) {
            Some(name) => EventError::MissingField {
                field: join_path(&path, name),
            },
            None if reason.starts_with("invalid type: null") => {
                EventError::MissingField { field: path }
            }
            None => EventError::InvalidField {
                field: path,
                reason,
            },
        }
    }
}

/// `serde_json` appends " at line L column C" to its messages; the typed error carries the
/// location itself (or it is meaningless, when decoding from an already-parsed value).
fn strip_location(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(at) if err.line() > 0 => message[..at].to_owned(),
        _ => message,
    }
}

/// serde's wording for an absent field is fixed: "missing field `name`".
fn missing_field_name(reason: &str) -> Option<&str> {
    reason.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Joins JSON path segments; serde_path_to_error renders the root as ".".
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    let path = path.trim_start_matches('.');
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        assert_eq!(join_path("", "."), "");
        assert_eq!(join_path("data", "."), "data");
        assert_eq!(join_path("data", "items[0].sku"), "data.items[0].sku");
        assert_eq!(join_path("data.items", "[0]"), "data.items[0]");
        assert_eq!(join_path("", "eventId"), "eventId");
    }

    #[test]
    fn messages_name_the_field() {
        let err = EventError::invalid("data.items[0].quantity", "must be at least 1");
        assert_eq!(
            err.to_string(),
            "invalid field `data.items[0].quantity`: must be at least 1"
        );
        assert_eq!(err.kind(), "InvalidField");
        assert!(!err.is_retryable());
    }
}
