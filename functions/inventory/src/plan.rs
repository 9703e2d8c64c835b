//! The reservation decision, pure: given what an order wants and what is in stock, reserve all
//! of it or name every SKU that is short.

use std::collections::BTreeMap;

use orderflow::event::{ReservedItem, StockShortage};

/// What to do with an order.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Every SKU has enough: reserve these quantities (one line per SKU, lines merged).
    Reserve(Vec<ReservedItem>),
    /// These SKUs are short; nothing is reserved.
    Short(Vec<StockShortage>),
}

/// Merges the order's lines per SKU (in first-seen order) and checks them against `stock`
/// (an unknown SKU has none).
pub fn plan(lines: &[(String, u32)], stock: &BTreeMap<String, u32>) -> Plan {
    let mut wanted: Vec<ReservedItem> = Vec::new();
    for (sku, quantity) in lines {
        match wanted.iter_mut().find(|item| &item.sku == sku) {
            Some(item) => item.quantity = item.quantity.saturating_add(*quantity),
            None => wanted.push(ReservedItem {
                sku: sku.clone(),
                quantity: *quantity,
            }),
        }
    }
    let shortages: Vec<StockShortage> = wanted
        .iter()
        .filter_map(|item| {
            let available = stock.get(&item.sku).copied().unwrap_or(0);
            (available < item.quantity).then(|| StockShortage {
                sku: item.sku.clone(),
                requested: item.quantity,
                available,
            })
        })
        .collect();
    if shortages.is_empty() {
        Plan::Reserve(wanted)
    } else {
        Plan::Short(shortages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    }

    fn lines(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
        pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    }

    #[test]
    fn reserves_when_everything_is_there() {
        let plan = plan(&lines(&[("A", 2), ("B", 1)]), &stock(&[("A", 2), ("B", 5)]));
        assert_eq!(
            plan,
            Plan::Reserve(vec![
                ReservedItem {
                    sku: "A".into(),
                    quantity: 2
                },
                ReservedItem {
                    sku: "B".into(),
                    quantity: 1
                }
            ])
        );
    }

    #[test]
    fn names_every_short_sku_and_reserves_nothing() {
        let plan = plan(
            &lines(&[("A", 3), ("B", 1), ("C", 1)]),
            &stock(&[("A", 2), ("B", 1)]),
        );
        assert_eq!(
            plan,
            Plan::Short(vec![
                StockShortage {
                    sku: "A".into(),
                    requested: 3,
                    available: 2
                },
                StockShortage {
                    sku: "C".into(),
                    requested: 1,
                    available: 0
                },
            ])
        );
    }

    #[test]
    fn lines_of_the_same_sku_are_added_up_before_checking() {
        let plan = plan(&lines(&[("A", 2), ("A", 2)]), &stock(&[("A", 3)]));
        assert_eq!(
            plan,
            Plan::Short(vec![StockShortage {
                sku: "A".into(),
                requested: 4,
                available: 3
            }])
        );
    }
}
