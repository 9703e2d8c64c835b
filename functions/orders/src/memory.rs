//! The orders table in memory: the same port as [`DynamoOrderRepository`](crate::DynamoOrderRepository),
//! with the same conditions, as in-memory writes that
//! [`InMemoryIdempotencyStore`](orderflow::idempotency::InMemoryIdempotencyStore) commits with
//! the idempotency record, all or nothing. For the handlers' and the API's unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use orderflow::Event;
use orderflow::idempotency::Write;

use crate::domain::{Decision, Order, OrderStatus};
use crate::error::OrdersError;
use crate::store::{Change, Created, HistoryEntry, OrderRepository};

#[derive(Debug, Default)]
struct Table {
    orders: BTreeMap<String, Order>,
    history: BTreeMap<String, Vec<HistoryEntry>>,
    /// Every outbox row, in the order written (the relay would publish them).
    outbox: Vec<Event>,
}

/// Orders, their histories and their outbox, in memory.
#[derive(Clone, Debug, Default)]
pub struct InMemoryOrderRepository {
    table: Arc<Mutex<Table>>,
}

impl InMemoryOrderRepository {
    /// No orders.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Event> {
        self.table.lock().outbox.clone()
    }

    fn write(
        &self,
        what: String,
        condition: impl Fn(&Table) -> Result<(), String> + Send + Sync + 'static,
        change: impl Fn(&mut Table) + Send + Sync + 'static,
    ) -> Write {
        let (check, apply) = (self.table.clone(), self.table.clone());
        Write::in_memory(
            what,
            Arc::new(move || condition(&check.lock())),
            Arc::new(move || change(&mut apply.lock())),
        )
    }
}

/// The condition the DynamoDB adapter puts on each decision's update.
fn allows(order: &Order, decision: &Decision) -> Result<(), String> {
    if order.status != OrderStatus::Placed {
        return Err(format!("order is {:?}", order.status));
    }
    match decision {
        Decision::RecordPayment(_) if order.reservation_id.is_some() => {
            Err("the reservation arrived meanwhile".into())
        }
        Decision::RecordReservation(_) if order.payment_id.is_some() => {
            Err("the payment arrived meanwhile".into())
        }
        _ => Ok(()),
    }
}

fn decided(order: &mut Order, decision: &Decision) {
    match decision {
        Decision::Ignore(_) => {}
        Decision::RecordPayment(payment_id) => order.payment_id = Some(payment_id.clone()),
        Decision::RecordReservation(reservation_id) => {
            order.reservation_id = Some(reservation_id.clone());
        }
        Decision::Confirm {
            payment_id,
            reservation_id,
        } => {
            order.status = OrderStatus::Confirmed;
            order.payment_id = Some(payment_id.clone());
            order.reservation_id = Some(reservation_id.clone());
        }
        Decision::Cancel { detail, .. } => {
            order.status = OrderStatus::Cancelled;
            order.cancel_detail = Some(detail.clone());
        }
    }
}

#[async_trait::async_trait]
impl OrderRepository for InMemoryOrderRepository {
    async fn create(&self, order: &Order, event: &Event) -> Result<Created, OrdersError> {
        let mut table = self.table.lock();
        if let Some(existing) = table.orders.get(&order.order_id) {
            return Ok(Created::Exists(Box::new(existing.clone())));
        }
        table.orders.insert(order.order_id.clone(), order.clone());
        table.history.insert(
            order.order_id.clone(),
            vec![HistoryEntry {
                status: "PLACED".into(),
                at: order.created_at,
                detail: None,
                event_id: Some(event.event_id.to_string()),
            }],
        );
        table.outbox.push(event.clone());
        Ok(Created::New)
    }

    async fn load(&self, order_id: &str) -> Result<Option<Order>, OrdersError> {
        Ok(self.table.lock().orders.get(order_id).cloned())
    }

    async fn view(
        &self,
        order_id: &str,
    ) -> Result<Option<(Order, Vec<HistoryEntry>)>, OrdersError> {
        let table = self.table.lock();
        Ok(table.orders.get(order_id).map(|order| {
            let history = table.history.get(order_id).cloned().unwrap_or_default();
            (order.clone(), history)
        }))
    }

    fn record_placed(
        &self,
        order: &Order,
        history: &HistoryEntry,
    ) -> Result<Vec<Write>, OrdersError> {
        let (id, order, entry) = (order.order_id.clone(), order.clone(), history.clone());
        let exists_id = id.clone();
        Ok(vec![self.write(
            format!("order {id} placed elsewhere"),
            move |table| match table.orders.contains_key(&exists_id) {
                true => Err("the order exists".into()),
                false => Ok(()),
            },
            move |table| {
                table.orders.insert(id.clone(), order.clone());
                table
                    .history
                    .entry(id.clone())
                    .or_default()
                    .push(entry.clone());
            },
        )])
    }

    fn apply(&self, order_id: &str, change: &Change) -> Result<Vec<Write>, OrdersError> {
        if matches!(change.decision, Decision::Ignore(_)) {
            return Ok(Vec::new());
        }
        let (id, check_id, change, check) = (
            order_id.to_owned(),
            order_id.to_owned(),
            change.clone(),
            change.decision.clone(),
        );
        let outbox_check = change.event.clone();
        Ok(vec![self.write(
            format!("order {id}: {:?}", change.decision),
            move |table| {
                // The DynamoDB adapter puts the outbox row only if it is not there yet.
                if let Some(event) = &outbox_check
                    && table.outbox.iter().any(|e| e.event_id == event.event_id)
                {
                    return Err(format!("outbox row {} exists", event.event_id));
                }
                match table.orders.get(&check_id) {
                    Some(order) => allows(order, &check),
                    None => Err("no such order".into()),
                }
            },
            move |table| {
                if let Some(order) = table.orders.get_mut(&id) {
                    decided(order, &change.decision);
                }
                table
                    .history
                    .entry(id.clone())
                    .or_default()
                    .push(change.history.clone());
                if let Some(event) = &change.event {
                    table.outbox.push(event.clone());
                }
            },
        )])
    }
}
