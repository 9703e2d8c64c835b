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
#[derive(Clone, Eq, PartialEq, thiserror::Error)]
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

/// A function's configuration, read from its environment (the template sets it all).
pub trait FromVars: Sized {
    /// Reads the configuration from `vars`.
    fn from_vars(vars: &Vars) -> Result<Self, EnvError>;

    /// Reads the configuration from the process environment.
    fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&Vars::process())
    }
}

/// `Debug` says what `Display` says: a function's `main` returns this error, and the runtime
/// prints it with `Debug` as the init error Lambda shows.
impl std::fmt::Debug for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Where a function's configuration comes from: the process environment (in Lambda), or a
/// map (a test checking that the template sets everything a function reads).
///
/// ```
/// use orderflow::consume::ConsumerEnv;
/// use orderflow::env::{EnvError, FromVars, Vars};
///
/// let vars = Vars::from_map([("IDEMPOTENCY_TABLE", "idempotency")]);
/// let env = ConsumerEnv::from_vars(&vars)?;
/// assert_eq!(env.idempotency_table, "idempotency");
/// assert_eq!(
///     ConsumerEnv::from_vars(&Vars::from_map([("OTHER", "x")])).unwrap_err(),
///     EnvError::Missing("IDEMPOTENCY_TABLE"),
/// );
/// # Ok::<(), EnvError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Vars {
    map: Option<std::collections::HashMap<String, String>>,
}

impl Vars {
    /// The process environment.
    pub fn process() -> Self {
        Vars { map: None }
    }

    /// A fixed set of variables.
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Vars {
            map: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The value of `name`, if set and non-empty.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        let value = match &self.map {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// The value of `name`, which must be set and non-empty.
    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        self.optional(name).ok_or(EnvError::Missing(name))
    }

    /// The value of `name` parsed as `T`, or `default` when unset.
    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, EnvError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|err: T::Err| EnvError::Invalid {
                name,
                value,
                reason: err.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_required_optional_and_parsed_values() {
        let vars = Vars::from_map([("A", "x"), ("EMPTY", " "), ("N", "12"), ("BAD", "twelve")]);
        assert_eq!(vars.required("A"), Ok("x".to_owned()));
        assert_eq!(vars.required("EMPTY"), Err(EnvError::Missing("EMPTY")));
        assert_eq!(vars.optional("MISSING"), None);
        assert_eq!(vars.parsed("N", 0u32), Ok(12));
        assert_eq!(vars.parsed("MISSING", 7u32), Ok(7));
        let err = vars.parsed("BAD", 0u32).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable BAD is `twelve`: invalid digit found in string"
        );
    }
}
