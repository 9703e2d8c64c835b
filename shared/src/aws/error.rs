//! SDK errors, classified once: whether retrying the same request later can help, and what the
//! request was (operation and resource), so a dead-lettered message says what failed.

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::error::Classify;

/// Service error codes that mean "not now" rather than "not this": throttling, capacity,
/// internal errors and timeouts, as the services spell them.
const TRANSIENT_CODES: &[&str] = &[
    // Throttling and capacity.
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "KMSThrottling",
    "KMSThrottlingException",
    "SlowDown",
    // The service's own trouble.
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    // DynamoDB: another request holds the item right now.
    "TransactionInProgressException",
    "TransactionConflictException",
];

/// Whether a service error code means the same request may succeed later.
pub(crate) fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// Whether an SDK call may succeed if made again: timeouts, dispatch failures (connection
/// refused or reset), unreadable responses, 5xx, 429 and the codes in `TRANSIENT_CODES`.
/// Everything else the service answered (validation, access denied, a missing resource, other
/// 4xx) is permanent, and so is a request the SDK could not even build.
pub(crate) fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status();
            status.is_server_error()
                || status.as_u16() == 429
                || ctx.err().code().is_some_and(is_transient_code)
        }
        SdkError::ConstructionFailure(_) => false,
        // A variant added by a later SDK: assume the request may work later rather than
        // dead-letter a message for a reason nobody classified.
        _ => true,
    }
}

/// A failed AWS request: which operation on which resource, the service's error code, the
/// whole error chain, and whether a retry can help.
///
/// Build it with [`AwsResultExt::aws`] at the call site, where the resource is known:
///
/// ```no_run
/// # async fn f(client: aws_sdk_dynamodb::Client) -> Result<(), orderflow::aws::AwsError> {
/// use orderflow::aws::AwsResultExt;
/// client.get_item().table_name("orders").send().await.aws("DynamoDB GetItem", "orders")?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{operation} on `{resource}` failed: {message}")]
pub struct AwsError {
    /// The service and operation, e.g. `DynamoDB PutItem`.
    pub operation: &'static str,
    /// The table, queue or topic it was about.
    pub resource: String,
    /// The service's error code, when the service answered (`ResourceNotFoundException`).
    pub code: Option<String>,
    /// The error and its causes.
    pub message: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
}

impl AwsError {
    /// Classifies `err`, a failure of `operation` on `resource`.
    pub fn new<E>(
        operation: &'static str,
        resource: impl Into<String>,
        err: &SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError {
            operation,
            resource: resource.into(),
            code: err.code().map(str::to_owned),
            message: error_chain(err),
            retryable: is_transient(err),
        }
    }

    /// A failure that is not an SDK error but belongs to the request (an answer that is missing
    /// what it must hold, say).
    pub fn other(
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
        retryable: bool,
    ) -> Self {
        AwsError {
            operation,
            resource: resource.into(),
            code: None,
            message: message.into(),
            retryable,
        }
    }

    /// Whether the service answered with `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl Classify for AwsError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn kind(&self) -> &'static str {
        if self.retryable {
            "AwsTransient"
        } else {
            "AwsPermanent"
        }
    }
}

/// Turns an SDK result into one with an [`AwsError`] naming the operation and the resource.
pub trait AwsResultExt<T> {
    /// Classifies the error, if any, as a failure of `operation` on `resource`.
    fn aws(self, operation: &'static str, resource: &str) -> Result<T, AwsError>;
}

impl<T, E> AwsResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn aws(self, operation: &'static str, resource: &str) -> Result<T, AwsError> {
        self.map_err(|err| AwsError::new(operation, resource, &err))
    }
}

/// An error and its causes, one after the other: "dispatch failure: io error: … refused".
/// The SDK's own `Display` says only "dispatch failure" or "service error".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some layers repeat their cause's text in their own; say it once.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(status: u16, code: &str) -> SdkError<GetItemError, HttpResponse> {
        let err = GetItemError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message(format!("{code} happened"))
                .build(),
        );
        let raw = HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    #[test]
    fn throttling_5xx_and_transport_failures_are_transient_the_rest_permanent() {
        for (status, code) in [
            (400, "ThrottlingException"),
            (400, "ProvisionedThroughputExceededException"),
            (500, "InternalServerError"),
            (503, "Whatever"),
            (429, "TooManyRequests"),
        ] {
            assert!(
                is_transient(&service_error(status, code)),
                "{status} {code}"
            );
        }
        for (status, code) in [
            (400, "ValidationException"),
            (400, "ResourceNotFoundException"),
            (403, "AccessDeniedException"),
            (400, "ConditionalCheckFailedException"),
            (404, "NotFound"),
        ] {
            assert!(
                !is_transient(&service_error(status, code)),
                "{status} {code}"
            );
        }
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("attempt timed out");
        assert!(is_transient(&timeout));
        let unbuildable: SdkError<GetItemError, HttpResponse> =
            SdkError::construction_failure("missing table name");
        assert!(!is_transient(&unbuildable));
    }

    #[test]
    fn an_aws_error_names_operation_resource_and_code() {
        let err = AwsError::new(
            "DynamoDB GetItem",
            "payments",
            &service_error(400, "ResourceNotFoundException"),
        );
        assert_eq!(err.code.as_deref(), Some("ResourceNotFoundException"));
        assert!(!err.is_retryable());
        assert_eq!(err.kind(), "AwsPermanent");
        let text = err.to_string();
        assert!(
            text.starts_with("DynamoDB GetItem on `payments` failed: "),
            "{text}"
        );
        assert!(text.contains("ResourceNotFoundException"), "{text}");
    }
}
