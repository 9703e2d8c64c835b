//! Every interleaving of an order's charge and its cancellation, with crashes and gateway
//! outages between any two steps, ends with the money right: for a cancelled order every
//! capture is refunded, for a confirmed one there is exactly one capture.
//!
//! The real `saga::charge` and `saga::settle_cancelled` run over in-memory ports whose every
//! call first waits at a gate. The explorer grants one call at a time to one actor (one
//! delivery of a message), so each schedule is a sequence of atomic port calls; a crash drops
//! an actor between two calls and starts a new delivery of its message from scratch, as SQS
//! redelivers after a Lambda dies. Every schedule is replayed from the start and extended by
//! every enabled choice (depth first), until all messages are done.

// Test code: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use orderflow::event::{EventPayload, OrderPlaced, examples};
use payment::saga;
use payment::{
    ChargeRequest, GatewayError, InMemoryPaymentStore, Payment, PaymentError, PaymentGateway,
    PaymentStatus, PaymentStore, Transition,
};
use rust_decimal::Decimal;

/// Which actor may make its next port call, and what each one waits at.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    granted: Option<usize>,
    waiting_at: HashMap<usize, &'static str>,
    /// Actors whose next gateway call fails (an outage).
    outage: Vec<usize>,
    /// Per actor, what each call of its current attempt returned: with the world, all that
    /// decides where the attempt goes next.
    traces: HashMap<usize, Vec<String>>,
}

impl Gate {
    fn record(&self, actor: usize, call: &str, result: &dyn std::fmt::Debug) {
        let mut state = self.state.lock().unwrap();
        state
            .traces
            .entry(actor)
            .or_default()
            .push(format!("{call}={result:?}"));
    }

    /// Waits until `actor` is granted its next call; says whether the call must fail.
    fn pass(&self, actor: usize, call: &'static str) -> impl Future<Output = bool> + '_ {
        poll_fn(move |_| {
            let mut state = self.state.lock().unwrap();
            if state.granted == Some(actor) {
                state.granted = None;
                state.waiting_at.remove(&actor);
                let fail = state.outage.contains(&actor);
                state.outage.retain(|a| *a != actor);
                Poll::Ready(fail)
            } else {
                state.waiting_at.insert(actor, call);
                Poll::Pending
            }
        })
    }
}

/// The gateway's books: idempotent per order for charges and per payment for refunds, as the
/// port promises.
#[derive(Default)]
struct Ledger {
    captures: Mutex<HashMap<String, (String, Decimal)>>,
    refunds: Mutex<HashMap<String, (String, Decimal)>>,
}

struct GatedStore {
    inner: Arc<InMemoryPaymentStore>,
    gate: Arc<Gate>,
    actor: usize,
}

#[async_trait::async_trait]
impl PaymentStore for GatedStore {
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, PaymentError> {
        self.gate.pass(self.actor, "get").await;
        let result = self.inner.get(order_id).await;
        self.gate.record(self.actor, "get", &result);
        result
    }
    async fn insert(&self, payment: &Payment) -> Result<payment::Inserted, PaymentError> {
        self.gate.pass(self.actor, "insert").await;
        let result = self.inner.insert(payment).await;
        self.gate.record(self.actor, "insert", &result);
        result
    }
    async fn transition(
        &self,
        expected: PaymentStatus,
        next: &Payment,
    ) -> Result<Transition, PaymentError> {
        self.gate.pass(self.actor, "transition").await;
        let result = self.inner.transition(expected, next).await;
        self.gate.record(self.actor, "transition", &result);
        result
    }
}

struct GatedGateway {
    ledger: Arc<Ledger>,
    gate: Arc<Gate>,
    actor: usize,
}

#[async_trait::async_trait]
impl PaymentGateway for GatedGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<String, GatewayError> {
        if self.gate.pass(self.actor, "charge").await {
            self.gate.record(self.actor, "charge", &"outage");
            return Err(GatewayError::Unavailable("outage".into()));
        }
        if request.customer_id.starts_with("decline-") {
            return Err(GatewayError::Declined {
                code: "card_declined".into(),
                reason: "declined".into(),
            });
        }
        let id = {
            let mut captures = self.ledger.captures.lock().unwrap();
            let (id, _) = captures
                .entry(request.idempotency_key.clone())
                .or_insert_with(|| (format!("pay-{}", request.idempotency_key), request.amount));
            id.clone()
        };
        self.gate.record(self.actor, "charge", &id);
        Ok(id)
    }
    async fn refund(&self, payment_id: &str, amount: Decimal) -> Result<String, GatewayError> {
        if self.gate.pass(self.actor, "refund").await {
            self.gate.record(self.actor, "refund", &"outage");
            return Err(GatewayError::Unavailable("outage".into()));
        }
        let id = {
            let mut refunds = self.ledger.refunds.lock().unwrap();
            let (id, _) = refunds
                .entry(payment_id.to_owned())
                .or_insert_with(|| (format!("ref-{payment_id}"), amount));
            id.clone()
        };
        self.gate.record(self.actor, "refund", &id);
        Ok(id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Message {
    Charge,
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Choice {
    /// Grant the actor its next port call.
    Step(usize),
    /// The actor's process dies before its next call; the message is delivered again.
    Crash(usize),
    /// The actor's next gateway call fails (transient); the message is delivered again.
    Outage(usize),
}

struct World {
    store: Arc<InMemoryPaymentStore>,
    ledger: Arc<Ledger>,
    gate: Arc<Gate>,
    order: OrderPlaced,
}

type Attempt = Pin<Box<dyn Future<Output = Result<(), PaymentError>>>>;

struct Actor {
    message: Message,
    attempt: Option<Attempt>,
    faults_left: u32,
    calls_in_attempt: u32,
}

impl World {
    fn new(customer: &str) -> Self {
        let EventPayload::OrderPlaced(mut order) = examples::order_placed().payload else {
            unreachable!("the example is an OrderPlaced")
        };
        order.customer_id = customer.into();
        World {
            store: Arc::new(InMemoryPaymentStore::new()),
            ledger: Arc::new(Ledger::default()),
            gate: Arc::new(Gate::default()),
            order,
        }
    }

    /// A new delivery of `message` to actor `id`, polled to its first port call.
    fn attempt(&self, id: usize, message: Message) -> Attempt {
        self.gate.state.lock().unwrap().traces.remove(&id);
        let store = GatedStore {
            inner: self.store.clone(),
            gate: self.gate.clone(),
            actor: id,
        };
        let gateway = GatedGateway {
            ledger: self.ledger.clone(),
            gate: self.gate.clone(),
            actor: id,
        };
        let order = self.order.clone();
        let mut attempt: Attempt = Box::pin(async move {
            match message {
                Message::Charge => saga::charge(&order, &store, &gateway).await.map(|_| ()),
                Message::Cancel => saga::settle_cancelled(&order.order_id, &store, &gateway)
                    .await
                    .map(|_| ()),
            }
        });
        let waker = std::task::Waker::noop();
        assert!(
            attempt
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending(),
            "every step starts with a port call"
        );
        attempt
    }
}

/// Replays `schedule` in a fresh world; returns the world, the choices enabled after it, and
/// a key of the state it reached (the world, and each actor's faults left, whether it is
/// done, and what its current attempt's calls returned): two schedules with one key go on
/// alike, so only one is explored further.
fn replay(
    customer: &str,
    messages: &[Message],
    faults_per_actor: u32,
    schedule: &[Choice],
) -> (World, Vec<Choice>, String) {
    let world = World::new(customer);
    let mut actors: Vec<Actor> = messages
        .iter()
        .enumerate()
        .map(|(id, message)| Actor {
            message: *message,
            attempt: Some(world.attempt(id, *message)),
            faults_left: faults_per_actor,
            calls_in_attempt: 0,
        })
        .collect();
    let waker = std::task::Waker::noop();
    for choice in schedule {
        match *choice {
            Choice::Step(id) => {
                world.gate.state.lock().unwrap().granted = Some(id);
                let actor = &mut actors[id];
                actor.calls_in_attempt += 1;
                let attempt = actor.attempt.as_mut().expect("a live actor");
                match attempt.as_mut().poll(&mut Context::from_waker(waker)) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(())) => actor.attempt = None,
                    // A transient failure: the message comes back and runs again.
                    Poll::Ready(Err(err)) => {
                        assert!(
                            orderflow::Classify::is_retryable(&err),
                            "only transient failures here: {err}"
                        );
                        actor.attempt = Some(world.attempt(id, actor.message));
                        actor.calls_in_attempt = 0;
                    }
                }
            }
            Choice::Crash(id) => {
                let actor = &mut actors[id];
                actor.faults_left -= 1;
                actor.attempt = Some(world.attempt(id, actor.message));
                actor.calls_in_attempt = 0;
            }
            Choice::Outage(id) => {
                actors[id].faults_left -= 1;
                world.gate.state.lock().unwrap().outage.push(id);
            }
        }
    }
    let (waiting, traces, outage) = {
        let state = world.gate.state.lock().unwrap();
        (
            state.waiting_at.clone(),
            state.traces.clone(),
            state.outage.clone(),
        )
    };
    let mut key = format!(
        "{:?}|{:?}|{:?}|{outage:?}",
        now(world.store.get(&world.order.order_id)).ok(),
        sorted(&world.ledger.captures.lock().unwrap()),
        sorted(&world.ledger.refunds.lock().unwrap()),
    );
    for (id, actor) in actors.iter().enumerate() {
        key.push_str(&format!(
            "|{id}:{}:{}:{:?}",
            actor.attempt.is_some(),
            actor.faults_left,
            traces.get(&id)
        ));
    }
    let mut enabled = Vec::new();
    for (id, actor) in actors.iter().enumerate() {
        if actor.attempt.is_none() {
            continue;
        }
        enabled.push(Choice::Step(id));
        if actor.faults_left > 0 && actor.calls_in_attempt > 0 {
            enabled.push(Choice::Crash(id));
        }
        let at_gateway = matches!(waiting.get(&id), Some(&"charge" | &"refund"));
        let outage_pending = world.gate.state.lock().unwrap().outage.contains(&id);
        if actor.faults_left > 0 && at_gateway && !outage_pending {
            enabled.push(Choice::Outage(id));
        }
    }
    (world, enabled, key)
}

fn sorted(map: &HashMap<String, (String, Decimal)>) -> Vec<(String, String, Decimal)> {
    let mut entries: Vec<_> = map
        .iter()
        .map(|(k, (id, amount))| (k.clone(), id.clone(), *amount))
        .collect();
    entries.sort();
    entries
}

/// Explores every schedule (each state once); calls `check` on each finished world; returns
/// how many distinct states were explored.
fn explore(
    customer: &str,
    messages: &[Message],
    faults_per_actor: u32,
    check: &dyn Fn(&World, &[Choice]),
) -> usize {
    let mut states = 0;
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Vec<Choice>> = vec![Vec::new()];
    while let Some(schedule) = stack.pop() {
        assert!(
            schedule.len() < 60,
            "a schedule that never ends: {schedule:?}"
        );
        let (world, enabled, key) = replay(customer, messages, faults_per_actor, &schedule);
        if !seen.insert(key) {
            continue;
        }
        if enabled.is_empty() {
            check(&world, &schedule);
            continue;
        }
        states += 1;
        for choice in enabled {
            let mut next = schedule.clone();
            next.push(choice);
            stack.push(next);
        }
    }
    states
}

/// The result of a future that does not wait (the in-memory store's calls).
fn now<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("an in-memory call waited"),
    }
}

fn payment(world: &World) -> Payment {
    now(world.store.get(&world.order.order_id))
        .unwrap()
        .expect("a payment row")
}

fn totals(world: &World) -> (Decimal, Decimal, usize) {
    let captures = world.ledger.captures.lock().unwrap();
    let refunds = world.ledger.refunds.lock().unwrap();
    (
        captures.values().map(|(_, a)| *a).sum(),
        refunds.values().map(|(_, a)| *a).sum(),
        captures.len(),
    )
}

#[test]
fn a_cancelled_order_keeps_no_money_in_any_interleaving() {
    for customer in ["cust-1", "decline-1"] {
        for messages in [
            vec![Message::Charge, Message::Cancel],
            // The same order placed twice (another system and the API, say) and cancelled.
            vec![Message::Charge, Message::Charge, Message::Cancel],
        ] {
            let faults = if messages.len() == 2 { 2 } else { 1 };
            let schedules = explore(customer, &messages, faults, &|world, schedule| {
                let (captured, refunded, _) = totals(world);
                assert_eq!(
                    captured, refunded,
                    "{customer}: refunds equal captures after {schedule:?}"
                );
                let row = payment(world);
                match row.status {
                    PaymentStatus::Voided | PaymentStatus::Declined => {
                        assert_eq!(captured, Decimal::ZERO, "{row:?} after {schedule:?}")
                    }
                    // The row tells what really happened: captured, then refunded.
                    PaymentStatus::Refunded => {
                        assert_eq!(row.amount, Some(captured), "{schedule:?}");
                        assert!(row.payment_id.is_some() && row.refund_id.is_some());
                    }
                    other => panic!("ended {other:?} after {schedule:?}"),
                }
            });
            assert!(
                schedules > 50,
                "{customer} {messages:?}: only {schedules} states"
            );
            eprintln!("{customer} {messages:?}: {schedules} states");
        }
    }
}

#[test]
fn a_confirmed_order_is_captured_exactly_once_in_any_interleaving() {
    for messages in [
        vec![Message::Charge],
        vec![Message::Charge, Message::Charge],
    ] {
        let schedules = explore("cust-1", &messages, 2, &|world, schedule| {
            let (captured, refunded, captures) = totals(world);
            assert_eq!(captures, 1, "{schedule:?}");
            assert_eq!(captured, world.order.total);
            assert_eq!(refunded, Decimal::ZERO);
            let row = payment(world);
            assert_eq!(row.status, PaymentStatus::Captured, "{schedule:?}");
            assert_eq!(row.payment_id.as_deref(), Some("pay-ord-1001"));
        });
        assert!(schedules > 10, "{messages:?}: only {schedules} schedules");
    }
    // A declined customer is never captured.
    explore("decline-1", &[Message::Charge], 2, &|world, _| {
        assert_eq!(totals(world).2, 0);
        assert_eq!(payment(world).status, PaymentStatus::Declined);
    });
}
