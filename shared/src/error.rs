//! What every orderflow error can say about itself: whether retrying later can help, and a
//! short, stable name for logs, metrics and a DLQ's `errorKind`.

/// An error that knows whether the same work may succeed if tried again later.
///
/// A handler's own error type implements it (a `thiserror` enum with `#[from]` for
/// [`crate::aws::AwsError`]), and `?` turns it into a [`crate::consume::HandlerError`] that
/// sends the message to the DLQ at once (permanent) or back to its queue with a delay
/// (transient).
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// Whether a later retry of the same work may succeed.
    fn is_retryable(&self) -> bool;

    /// A short, stable name (`AwsPermanent`, `GatewayUnavailable`, …).
    fn kind(&self) -> &'static str {
        if self.is_retryable() {
            "HandlerTransient"
        } else {
            "HandlerPermanent"
        }
    }
}
