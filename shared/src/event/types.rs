//! The closed set of event types and the versions each one has had.

use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, EnumString, IntoEnumIterator, IntoStaticStr};

/// The type of an event: always a past-tense fact, never a command.
///
/// The wire name (`eventType`) is the variant name, e.g. `"OrderPlaced"`.
#[derive(
    Clone,
    Copy,
    Debug,
    Deserialize,
    Display,
    EnumIter,
    EnumString,
    Eq,
    Hash,
    IntoStaticStr,
    Ord,
    PartialEq,
    PartialOrd,
    Serialize,
)]
pub enum EventType {
    /// A customer placed an order.
    OrderPlaced,
    /// The payment for an order was captured.
    PaymentProcessed,
    /// The payment for an order was declined or could not be taken.
    PaymentFailed,
    /// Stock for every item of an order was reserved.
    InventoryReserved,
    /// At least one item of an order could not be reserved.
    InventoryOutOfStock,
    /// An order was cancelled (and compensations are due).
    OrderCancelled,
    /// An order was paid for and its stock reserved.
    OrderConfirmed,
}

impl EventType {
    /// The version this code writes; readers also accept every version from 1 up to it.
    pub const fn current_version(self) -> u32 {
        match self {
            // v1 had no currency and called the unit price `price`; see `OrderPlacedV1`.
            EventType::OrderPlaced => 2,
            _ => 1,
        }
    }

    /// Every version a reader of this code accepts, oldest first.
    pub fn known_versions(self) -> std::ops::RangeInclusive<u32> {
        1..=self.current_version()
    }

    /// The wire name, e.g. `"OrderPlaced"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kebab-case name used for schema files and the CLI, e.g. `"order-placed"`.
    pub fn kebab_name(self) -> &'static str {
        match self {
            EventType::OrderPlaced => "order-placed",
            EventType::PaymentProcessed => "payment-processed",
            EventType::PaymentFailed => "payment-failed",
            EventType::InventoryReserved => "inventory-reserved",
            EventType::InventoryOutOfStock => "inventory-out-of-stock",
            EventType::OrderCancelled => "order-cancelled",
            EventType::OrderConfirmed => "order-confirmed",
        }
    }

    /// Finds a type by its wire name (`OrderPlaced`) or kebab-case name (`order-placed`).
    pub fn from_any_name(name: &str) -> Option<Self> {
        Self::iter().find(|t| t.as_str() == name || t.kebab_name() == name)
    }

    /// All event types.
    pub fn all() -> impl Iterator<Item = EventType> {
        Self::iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for t in EventType::all() {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(EventType::from_any_name(t.kebab_name()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert!("orderPlaced".parse::<EventType>().is_err());
    }

    #[test]
    fn versions_start_at_one() {
        assert_eq!(EventType::OrderPlaced.known_versions(), 1..=2);
        assert_eq!(EventType::PaymentFailed.known_versions(), 1..=1);
    }
}
