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

    /// How soon the first retry may succeed, when that is sooner than the consumer's backoff
    /// (another record in flight is about to provide what was missing). Later retries use the
    /// backoff as usual, so a message whose cause never comes still waits as long in all.
    fn first_retry_after(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether the work waits for another message to be processed first (its cause), not for
    /// a dependency to recover. Such a wait may outlast the queue's receive budget: one receive
    /// before the last, the consumer sends the message back to its queue to wait on, up to
    /// [`ConsumerOptions::max_wait_for_cause`](crate::consume::ConsumerOptions::max_wait_for_cause),
    /// instead of leaving it to the redrive policy.
    fn waits_for_cause(&self) -> bool {
        false
    }
}

/// Most bytes of an error message a DLQ's `errorMessage` attribute carries.
pub(crate) const MAX_ERROR_MESSAGE: usize = 4_096;

/// The error message as a DLQ attribute carries it: at most [`MAX_ERROR_MESSAGE`] bytes, cut
/// at a character boundary.
pub(crate) fn error_message_attribute(message: &str) -> &str {
    if message.len() <= MAX_ERROR_MESSAGE {
        return message;
    }
    let cut = (0..=MAX_ERROR_MESSAGE)
        .rev()
        .find(|i| message.is_char_boundary(*i))
        .unwrap_or(0);
    &message[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(error_message_attribute("short"), "short");
        let long = "é".repeat(MAX_ERROR_MESSAGE);
        let cut = error_message_attribute(&long);
        assert!(cut.len() <= MAX_ERROR_MESSAGE && cut.len() >= MAX_ERROR_MESSAGE - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
