//! The credentials and region Lambda hands every function in its environment, taken from there
//! directly when they are set.
//!
//! Why: with neither given, `aws_config` builds its whole default chains at load, for
//! credentials an STS client (whose endpoint rules parse AWS's partition table), an IMDS client
//! and the profile, web-identity and container providers, before it asks the first of them, the
//! environment. A function's environment always holds its role's credentials and region, so
//! that was a tenth of every cold start's instructions spent on providers never asked
//! (callgrind, payment: 1.2 of 6.2 million). When they are set, the answer is the one the
//! default chains give, which ask the environment first; when they are not (a developer's
//! machine with a profile or SSO), the default chains are built as before.

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};

/// The environment's credentials provider, when `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
/// both hold a value (the SDK's environment provider also reads `AWS_SESSION_TOKEN`).
pub(super) fn credentials(
    var: impl Fn(&str) -> Option<String>,
) -> Option<EnvironmentVariableCredentialsProvider> {
    let set = |name: &str| var(name).is_some_and(|value| !value.trim().is_empty());
    (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"))
        .then(EnvironmentVariableCredentialsProvider::new)
}

/// The environment's region provider, when `AWS_REGION` holds a value (the first place the
/// SDK's region chain looks).
pub(super) fn region(
    var: impl Fn(&str) -> Option<String>,
) -> Option<EnvironmentVariableRegionProvider> {
    var("AWS_REGION")
        .is_some_and(|value| !value.trim().is_empty())
        .then(EnvironmentVariableRegionProvider::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_lambda_environment_is_read_directly() {
        let lambda = env(&[
            ("AWS_ACCESS_KEY_ID", "ASIA..."),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        assert!(credentials(&lambda).is_some());
        assert!(region(&lambda).is_some());
    }

    #[test]
    fn anything_less_is_left_to_the_default_chains() {
        let key_only = env(&[("AWS_ACCESS_KEY_ID", "AKIA..."), ("AWS_REGION", " ")]);
        assert!(credentials(&key_only).is_none());
        assert!(region(&key_only).is_none());
        let blank_secret = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA..."),
            ("AWS_SECRET_ACCESS_KEY", ""),
        ]);
        assert!(credentials(&blank_secret).is_none());
        let profile = env(&[("AWS_PROFILE", "dev"), ("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert!(credentials(&profile).is_none());
        assert!(region(&profile).is_none());
    }
}
