//! Reading a function's configuration from its environment: the template sets every variable,
//! and a function needs nothing else.

/// Names of the variables the library itself reads.
pub mod vars {
    /// DynamoDB table of idempotency records.
    pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
    /// SNS topic follow-up events are published to.
    pub const EVENTS_TOPIC_ARN: &str = "EVENTS_TOPIC_ARN";
    /// The consumer's DLQ (optional: otherwise the queue's redrive policy names it).
    pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
}

/// A variable is missing or unusable.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// Not set, or empty.
    #[error("environment variable {0} must be set (the template sets it)")]
    Missing(&'static str),
    /// Set, but not to a usable value.
    #[error("environment variable {name} is `{value}`: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// The value of `name`, which must be set and non-empty.
pub fn required(name: &'static str) -> Result<String, EnvError> {
    optional(name).ok_or(EnvError::Missing(name))
}

/// The value of `name`, if set and non-empty.
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The value of `name` parsed as `T`, or `default` when unset.
pub fn parsed<T>(name: &'static str, default: T) -> Result<T, EnvError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|err: T::Err| EnvError::Invalid {
            name,
            value,
            reason: err.to_string(),
        }),
    }
}
