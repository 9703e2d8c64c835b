//! README's "Writing a consumer", compiled and run: the code between the markers below is the
//! README's example, character for character (`the_readme_shows_this_example` checks it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

// README: begin
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use orderflow::consume::{Consumer, HandlerError, Message, Outcome, RecordOutcome};
use orderflow::event::{OrderPlaced, PaymentProcessed, examples};
use orderflow::testing::TestConsumer;

/// What every handler shares: clients, stores, configuration.
#[derive(Default)]
struct State {
    charges: AtomicUsize,
}

/// `OrderPlaced`: charge, then tell the others. With `?` on the function's own error type
/// (thiserror, `#[from] AwsError`, `impl Classify`), a permanent error goes to the DLQ at once
/// and a transient one comes back with backoff.
async fn charge(order: Message<OrderPlaced>, state: Arc<State>) -> Result<Outcome, HandlerError> {
    state.charges.fetch_add(1, Ordering::SeqCst);
    let paid = PaymentProcessed {
        order_id: order.data.order_id.clone(),
        payment_id: format!("pay-{}", order.data.order_id),
        amount: order.data.total,
        currency: order.data.currency.clone(),
    };
    Ok(Outcome::done().publish(order.follow_up(paid)))
}

#[tokio::test]
async fn an_order_delivered_twice_is_charged_once() {
    // Deployed, main.rs wires the consumer's ports to AWS and serves it:
    //   orderflow::lambda::run_sqs(Consumer::new("payment", state).on(charge).wired(&sdk, &env))
    // (DynamoDB idempotency store, SNS publisher, SQS dead letters; run_sqs calls ready(), so a
    // route missing a port it needs stops the function at init, not on a record).
    // A unit test wires the same handlers to in-memory adapters of every port (feature `testing`):
    let consumer = TestConsumer::new(
        Consumer::new("payment", State::default()).on(charge), // on_transactional: commit writes with the record
    )
    .expect("every port given");

    let placed = examples::order_placed();
    let first = consumer.deliver(&placed).await.unwrap();
    let again = consumer.deliver(&placed).await.unwrap();
    assert!(matches!(
        (first, again),
        (RecordOutcome::Handled, RecordOutcome::Duplicate)
    ));

    assert_eq!(consumer.state().charges.load(Ordering::SeqCst), 1);
    // The duplicate published the stored follow-up again, with the same id.
    let sent = consumer.published();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].event_id, sent[1].event_id);
}
// README: end

#[test]
fn the_readme_shows_this_example() {
    let this = include_str!("writing_a_consumer.rs");
    let begin = this.find("// README: begin\n").expect("begin marker") + "// README: begin\n".len();
    let end = this.find("// README: end").expect("end marker");
    let example = &this[begin..end];
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README's \"Writing a consumer\" must show shared/tests/writing_a_consumer.rs between its markers"
    );
}
