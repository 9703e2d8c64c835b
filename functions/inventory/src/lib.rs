//! The inventory service: on `OrderPlaced` reserves every item (stock ≥ quantity, checked by
//! condition) in ONE transaction together with the idempotency record, emitting
//! `InventoryReserved` or `InventoryOutOfStock` naming the short SKUs; on `OrderCancelled`
//! gives a reservation back exactly once.

pub mod error;
pub mod memory;
pub mod plan;
pub mod store;

use std::sync::Arc;

use orderflow::consume::{Consumer, ConsumerEnv, ConsumerOptions, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{InventoryOutOfStock, InventoryReserved, OrderCancelled, OrderPlaced};
use tracing::info;

pub use error::InventoryError;
pub use memory::InMemoryInventoryStore;
pub use plan::{Plan, plan};
pub use store::{DynamoInventoryStore, InventoryStore, Reservation, ReservationStatus};

/// The consumer's name: idempotency key prefix and `source` of its events.
pub const NAME: &str = "inventory";

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Idempotency, follow-up topic, DLQ.
    pub consumer: ConsumerEnv,
    /// `INVENTORY_TABLE`.
    pub inventory_table: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            consumer: ConsumerEnv::from_vars(vars)?,
            inventory_table: vars.required("INVENTORY_TABLE")?,
        })
    }
}

/// What the handlers share.
pub struct State {
    /// The inventory table.
    pub store: Arc<dyn InventoryStore>,
}

/// The consumer as the Lambda runs it.
pub fn consumer(sdk: &aws_config::SdkConfig, config: Config) -> Consumer<State> {
    let store =
        DynamoInventoryStore::new(aws_sdk_dynamodb::Client::new(sdk), config.inventory_table);
    handlers(State {
        store: Arc::new(store),
    })
    .wired(sdk, &config.consumer)
    .with_options(options())
}

/// Records of one batch run one after another: popular SKUs are in many orders, and
/// transactions on one stock item running at once cancel each other (`TransactionConflict`).
/// Concurrency comes from the event source's parallel invocations instead.
pub fn options() -> ConsumerOptions {
    ConsumerOptions {
        max_concurrency: 1,
        ..ConsumerOptions::default()
    }
}

/// The handlers, unwired. Both are transactional: their effect is the writes they return.
pub fn handlers(state: State) -> Consumer<State> {
    Consumer::new(NAME, state)
        .on_transactional(reserve)
        .on_transactional(release)
}

/// OrderPlaced: reserve everything or nothing.
pub async fn reserve(
    message: Message<OrderPlaced>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = &message.data;
    if let Some(existing) = state.store.reservation(&order.order_id).await? {
        // Cancelled first (the cancellation overtook the order): never reserve for it.
        info!(order_id = %order.order_id, status = ?existing.status, "order already has a reservation record; nothing to do");
        return Ok(Outcome::done());
    }
    let lines: Vec<(String, u32)> = order
        .items
        .iter()
        .map(|i| (i.sku.clone(), i.quantity))
        .collect();
    // Each SKU once: an order may list one SKU on several lines, and BatchGetItem refuses
    // duplicate keys.
    let skus: Vec<String> = lines
        .iter()
        .map(|(sku, _)| sku.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let stock = state.store.stock(&skus).await?;
    // The decision is made on what was read; the writes' conditions make sure it still holds
    // at commit. If stock moved in between, the transaction fails and the retry decides again.
    let mut outcome = Outcome::done();
    match plan(&lines, &stock) {
        Plan::Reserve(items) => {
            for write in state.store.reserve(&order.order_id, &items)? {
                outcome = outcome.write(write);
            }
            outcome = outcome.publish(message.follow_up(InventoryReserved {
                order_id: order.order_id.clone(),
                reservation_id: format!("res-{}", order.order_id),
                items,
            }));
        }
        Plan::Short(shortages) => {
            for write in state
                .store
                .record(&order.order_id, ReservationStatus::Rejected)?
            {
                outcome = outcome.write(write);
            }
            outcome = outcome.publish(message.follow_up(InventoryOutOfStock {
                order_id: order.order_id.clone(),
                shortages,
            }));
        }
    }
    Ok(outcome)
}

/// OrderCancelled: give a held reservation back, once; remember a cancellation that came first.
pub async fn release(
    message: Message<OrderCancelled>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order_id = &message.data.order_id;
    let writes = match state.store.reservation(order_id).await? {
        Some(reservation) if reservation.status == ReservationStatus::Reserved => {
            state.store.release(&reservation)?
        }
        Some(_) => Vec::new(),
        None => state.store.record(order_id, ReservationStatus::Cancelled)?,
    };
    Ok(writes.into_iter().fold(Outcome::done(), Outcome::write))
}
