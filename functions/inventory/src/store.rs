//! The inventory table (partition key `pk`): stock items `SKU#<sku>` with a numeric `stock`,
//! and one reservation per order, `RESERVATION#<orderId>`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use orderflow::aws::AwsResultExt;
use orderflow::event::ReservedItem;
use orderflow::idempotency::Write;
use serde::{Deserialize, Serialize};

use crate::error::InventoryError;

/// Where an order's reservation stands.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Stock is held for the order.
    Reserved,
    /// The order could not be served; nothing is held.
    Rejected,
    /// The order was cancelled and its stock given back.
    Released,
    /// The order was cancelled before anything was reserved: never reserve for it.
    Cancelled,
}

/// One order's reservation.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// `RESERVATION#<orderId>`.
    pub pk: String,
    /// The order.
    pub order_id: String,
    /// Where it stands.
    pub status: ReservationStatus,
    /// What is (or was) held.
    pub items: Vec<ReservedItem>,
}

impl Reservation {
    /// The order's reservation with `status`, holding `items`: what either adapter stores.
    pub fn new(order_id: &str, status: ReservationStatus, items: &[ReservedItem]) -> Self {
        Reservation {
            pk: reservation_key(order_id),
            order_id: order_id.to_owned(),
            status,
            items: items.to_vec(),
        }
    }
}

/// The inventory table, as the service needs it. Reads happen now; changes are returned as
/// writes, committed by the consumer with the idempotency record in one transaction.
#[async_trait::async_trait]
pub trait InventoryStore: Send + Sync {
    /// Units in stock for each SKU asked (absent SKUs are left out).
    async fn stock(&self, skus: &[String]) -> Result<BTreeMap<String, u32>, InventoryError>;
    /// The order's reservation, if any.
    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, InventoryError>;
    /// Takes `items` out of stock (each only if enough is left) and records the reservation.
    fn reserve(&self, order_id: &str, items: &[ReservedItem])
    -> Result<Vec<Write>, InventoryError>;
    /// Records that the order's reservation has status `status` with nothing held.
    fn record(
        &self,
        order_id: &str,
        status: ReservationStatus,
    ) -> Result<Vec<Write>, InventoryError>;
    /// Gives a held reservation's stock back, once.
    fn release(&self, reservation: &Reservation) -> Result<Vec<Write>, InventoryError>;
}

/// The inventory table in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoInventoryStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn sku_key(sku: &str) -> AttributeValue {
    AttributeValue::S(format!("SKU#{sku}"))
}

pub(crate) fn reservation_key(order_id: &str) -> String {
    format!("RESERVATION#{order_id}")
}

/// A request the SDK refused to build: a bug here, not something a retry fixes.
fn unbuildable(err: impl std::fmt::Display) -> InventoryError {
    InventoryError::unreadable("(request)", err)
}

impl DynamoInventoryStore {
    /// A store over `table` (partition key `pk`, String).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoInventoryStore {
            client,
            table: table.into(),
        }
    }

    /// Sets a SKU's stock (seeding, restocking).
    pub async fn set_stock(&self, sku: &str, units: u32) -> Result<(), InventoryError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", sku_key(sku))
            .item("sku", AttributeValue::S(sku.into()))
            .item("stock", AttributeValue::N(units.to_string()))
            .send()
            .await
            .aws("DynamoDB PutItem", &self.table)?;
        Ok(())
    }

    fn reservation_put(
        &self,
        reservation: &Reservation,
        condition: &str,
    ) -> Result<Write, InventoryError> {
        let item = serde_dynamo::to_item(reservation)
            .map_err(|e| InventoryError::unreadable(&reservation.pk, e))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(unbuildable)?;
        Ok(Write::dynamodb(
            TransactWriteItem::builder().put(put).build(),
        ))
    }

    fn stock_change(
        &self,
        item: &ReservedItem,
        expression: &str,
        condition: &str,
    ) -> Result<Write, InventoryError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", sku_key(&item.sku))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":q", AttributeValue::N(item.quantity.to_string()))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .build()
            .map_err(unbuildable)?;
        Ok(Write::dynamodb(
            TransactWriteItem::builder().update(update).build(),
        ))
    }
}

#[async_trait::async_trait]
impl InventoryStore for DynamoInventoryStore {
    async fn stock(&self, skus: &[String]) -> Result<BTreeMap<String, u32>, InventoryError> {
        let mut stock = BTreeMap::new();
        // BatchGetItem takes at most 100 keys; an order has far fewer lines.
        for chunk in skus.chunks(100) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|sku| HashMap::from([("pk".to_owned(), sku_key(sku))]))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(unbuildable)?,
            );
            while let Some(keys) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .aws("DynamoDB BatchGetItem", &self.table)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    // The key says which SKU; a stock that is not a count is an error, not zero.
                    let pk = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        .unwrap_or_default();
                    let sku = pk
                        .strip_prefix("SKU#")
                        .ok_or_else(|| InventoryError::unreadable(pk, "not a stock item"))?;
                    let units = item
                        .get("stock")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| InventoryError::unreadable(pk, "no numeric `stock`"))?;
                    stock.insert(sku.to_owned(), units);
                }
                request = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .cloned();
            }
        }
        Ok(stock)
    }

    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, InventoryError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(reservation_key(order_id)))
            .consistent_read(true)
            .send()
            .await
            .aws("DynamoDB GetItem", &self.table)?;
        out.item()
            .map(|item| {
                serde_dynamo::from_item(item.clone())
                    .map_err(|e| InventoryError::unreadable(reservation_key(order_id), e))
            })
            .transpose()
    }

    fn reserve(
        &self,
        order_id: &str,
        items: &[ReservedItem],
    ) -> Result<Vec<Write>, InventoryError> {
        let mut writes = Vec::with_capacity(items.len() + 1);
        for item in items {
            writes.push(self.stock_change(item, "SET stock = stock - :q", "stock >= :q")?);
        }
        let reservation = Reservation::new(order_id, ReservationStatus::Reserved, items);
        writes.push(self.reservation_put(&reservation, "attribute_not_exists(pk)")?);
        Ok(writes)
    }

    fn record(
        &self,
        order_id: &str,
        status: ReservationStatus,
    ) -> Result<Vec<Write>, InventoryError> {
        let reservation = Reservation::new(order_id, status, &[]);
        Ok(vec![self.reservation_put(
            &reservation,
            "attribute_not_exists(pk)",
        )?])
    }

    fn release(&self, reservation: &Reservation) -> Result<Vec<Write>, InventoryError> {
        let mut writes = Vec::with_capacity(reservation.items.len() + 1);
        for item in &reservation.items {
            writes.push(self.stock_change(
                item,
                "SET stock = stock + :q",
                "attribute_exists(pk)",
            )?);
        }
        let released = Reservation {
            status: ReservationStatus::Released,
            ..reservation.clone()
        };
        let item = serde_dynamo::to_item(&released)
            .map_err(|e| InventoryError::unreadable(&released.pk, e))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            // Exactly once: only a reservation that still holds stock is released.
            .condition_expression("#status = :reserved")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":reserved", AttributeValue::S("RESERVED".into()))
            .build()
            .map_err(unbuildable)?;
        writes.push(Write::dynamodb(
            TransactWriteItem::builder().put(put).build(),
        ));
        Ok(writes)
    }
}
