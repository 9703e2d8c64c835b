//! The inventory store in memory: the same port as [`DynamoInventoryStore`](crate::DynamoInventoryStore),
//! with in-memory writes (a condition and a change each) that
//! [`InMemoryIdempotencyStore`](orderflow::idempotency::InMemoryIdempotencyStore) commits with
//! the idempotency record, all or nothing. For the handlers' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use orderflow::event::ReservedItem;
use orderflow::idempotency::Write;

use crate::error::InventoryError;
use crate::store::{InventoryStore, Reservation, ReservationStatus, reservation_key};

#[derive(Debug, Default)]
struct Tables {
    stock: BTreeMap<String, u32>,
    reservations: BTreeMap<String, Reservation>,
}

/// Stock and reservations in memory.
#[derive(Clone, Debug, Default)]
pub struct InMemoryInventoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl InMemoryInventoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `sku`'s stock.
    pub fn set_stock(&self, sku: &str, units: u32) {
        self.tables.lock().stock.insert(sku.to_owned(), units);
    }

    /// `sku`'s stock, if it is stocked.
    pub fn stock_of(&self, sku: &str) -> Option<u32> {
        self.tables.lock().stock.get(sku).copied()
    }

    /// The order's reservation, if any.
    pub fn reservation_of(&self, order_id: &str) -> Option<Reservation> {
        self.tables
            .lock()
            .reservations
            .get(&reservation_key(order_id))
            .cloned()
    }

    /// `quantity` units of `sku` out (`taken`) or back in, if the condition holds.
    fn stock_change(&self, item: &ReservedItem, taken: bool) -> Write {
        let (check, change) = (self.tables.clone(), self.tables.clone());
        let (sku, quantity) = (item.sku.clone(), item.quantity);
        let (sku_check, sku_change) = (sku.clone(), sku.clone());
        Write::in_memory(
            format!(
                "stock of {sku} {} {quantity}",
                if taken { "-" } else { "+" }
            ),
            Arc::new(move || match check.lock().stock.get(&sku_check) {
                Some(units) if !taken || *units >= quantity => Ok(()),
                Some(units) => Err(format!("{units} left, {quantity} asked")),
                None => Err("no such SKU".into()),
            }),
            Arc::new(move || {
                if let Some(units) = change.lock().stock.get_mut(&sku_change) {
                    *units = if taken {
                        units.saturating_sub(quantity)
                    } else {
                        *units + quantity
                    };
                }
            }),
        )
    }

    /// Puts `reservation` if there is none yet (`expected` None), or if the one there has
    /// status `expected`.
    fn reservation_put(
        &self,
        reservation: Reservation,
        expected: Option<ReservationStatus>,
    ) -> Write {
        let (check, change) = (self.tables.clone(), self.tables.clone());
        let key = reservation.pk.clone();
        let check_key = key.clone();
        Write::in_memory(
            format!("{key} {:?}", reservation.status),
            Arc::new(
                move || match (check.lock().reservations.get(&check_key), expected) {
                    (None, None) => Ok(()),
                    (Some(existing), Some(status)) if existing.status == status => Ok(()),
                    (existing, _) => {
                        Err(format!("reservation is {:?}", existing.map(|r| r.status)))
                    }
                },
            ),
            Arc::new(move || {
                change
                    .lock()
                    .reservations
                    .insert(key.clone(), reservation.clone());
            }),
        )
    }
}

#[async_trait::async_trait]
impl InventoryStore for InMemoryInventoryStore {
    async fn stock(&self, skus: &[String]) -> Result<BTreeMap<String, u32>, InventoryError> {
        let tables = self.tables.lock();
        Ok(skus
            .iter()
            .filter_map(|sku| tables.stock.get(sku).map(|units| (sku.clone(), *units)))
            .collect())
    }

    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, InventoryError> {
        Ok(self.reservation_of(order_id))
    }

    fn reserve(
        &self,
        order_id: &str,
        items: &[ReservedItem],
    ) -> Result<Vec<Write>, InventoryError> {
        let mut writes: Vec<Write> = items.iter().map(|i| self.stock_change(i, true)).collect();
        writes.push(self.reservation_put(
            Reservation::new(order_id, ReservationStatus::Reserved, items),
            None,
        ));
        Ok(writes)
    }

    fn record(
        &self,
        order_id: &str,
        status: ReservationStatus,
    ) -> Result<Vec<Write>, InventoryError> {
        Ok(vec![self.reservation_put(
            Reservation::new(order_id, status, &[]),
            None,
        )])
    }

    fn release(&self, reservation: &Reservation) -> Result<Vec<Write>, InventoryError> {
        let mut writes: Vec<Write> = reservation
            .items
            .iter()
            .map(|i| self.stock_change(i, false))
            .collect();
        writes.push(self.reservation_put(
            Reservation {
                status: ReservationStatus::Released,
                ..reservation.clone()
            },
            Some(ReservationStatus::Reserved),
        ));
        Ok(writes)
    }
}
