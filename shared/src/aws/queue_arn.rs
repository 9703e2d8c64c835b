//! An SQS queue's ARN, read once: what `GetQueueUrl` needs (the name and the owner's account).
//! URLs are never built from it by hand: their shape differs between AWS and emulators.

/// The parts of `arn:aws:sqs:<region>:<account>:<name>`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct QueueArn<'a> {
    /// The owner's account id.
    pub account: &'a str,
    /// The queue's name.
    pub name: &'a str,
}

impl<'a> QueueArn<'a> {
    /// The parts of `arn`, if it is an SQS queue ARN.
    pub fn parse(arn: &'a str) -> Option<Self> {
        match arn.split(':').collect::<Vec<_>>().as_slice() {
            ["arn", _, "sqs", _, account, name] if !name.is_empty() => {
                Some(QueueArn { account, name })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_arn_gives_its_account_and_name_and_nothing_else_parses() {
        assert_eq!(
            QueueArn::parse("arn:aws:sqs:us-east-1:123456789012:orders-dlq.fifo"),
            Some(QueueArn {
                account: "123456789012",
                name: "orders-dlq.fifo"
            })
        );
        for not_a_queue in [
            "orders",
            "arn:aws:sns:us-east-1:1:topic",
            "arn:aws:sqs:us-east-1:1:",
            "https://sqs/1/q",
        ] {
            assert_eq!(QueueArn::parse(not_a_queue), None, "{not_a_queue}");
        }
    }
}
