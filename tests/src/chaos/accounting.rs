//! Every event accounted for, from the functions' own words: each `record done` line says
//! which function, which event, and how the record ended (handled, duplicate, dead-lettered,
//! failed for a retry).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::plan::Plan;

/// How often each function ended a record of each event, by outcome.
#[derive(Debug, Default)]
pub struct Ledger {
    /// (function, event id) → outcome → count.
    pub outcomes: BTreeMap<(String, String), BTreeMap<String, usize>>,
    /// Outcome → count, over every record.
    pub totals: BTreeMap<String, usize>,
}

/// Reads every function's log under `dir`.
pub fn read(dir: &Path) -> Ledger {
    let mut ledger = Ledger::default();
    for log in orderflow_local::logs::function_logs(dir) {
        for line in log.content.lines() {
            if !line.contains("record done") {
                continue;
            }
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if entry["message"] != "record done" {
                continue;
            }
            let outcome = entry["outcome"].as_str().unwrap_or("unknown").to_owned();
            *ledger.totals.entry(outcome.clone()).or_default() += 1;
            let Some(event_id) = entry["event_id"].as_str() else {
                continue;
            };
            *ledger
                .outcomes
                .entry((log.function.clone(), event_id.to_owned()))
                .or_default()
                .entry(outcome)
                .or_default() += 1;
        }
    }
    ledger
}

/// Figures, and every event of `plan` some consumer neither applied nor skipped as a
/// duplicate.
pub fn account(ledger: &Ledger, plan: &Plan, consumers: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut lost = Vec::new();
    let (mut applied, mut duplicates, mut after_dead_letter, mut rerun) = (0, 0, 0, 0);
    for event in plan.events() {
        let id = event.event_id.to_string();
        for consumer in consumers {
            let outcomes = ledger
                .outcomes
                .get(&((*consumer).to_owned(), id.clone()))
                .cloned()
                .unwrap_or_default();
            let handled = outcomes.get("handled").copied().unwrap_or(0);
            let duplicate = outcomes.get("duplicate").copied().unwrap_or(0);
            // A handler runs again when its instance was killed after the effect and before
            // the claim was completed; the effect's own keys keep it once (the tables say).
            if handled > 1 {
                rerun += 1;
            }
            if handled == 0 && duplicate == 0 {
                lost.push(format!(
                    "{consumer} never applied event {id} (order {}): {outcomes:?}",
                    event.aggregate_id
                ));
            }
            applied += handled;
            duplicates += duplicate;
            if outcomes.contains_key("dead_lettered") && handled > 0 {
                after_dead_letter += 1;
            }
        }
    }
    let totals = ledger
        .totals
        .iter()
        .map(|(outcome, n)| format!("{outcome} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let figures = vec![
        format!(
            "orders' events: {applied} handled, {duplicates} skipped as duplicates, {after_dead_letter} applied after a dead letter and its replay, {rerun} run again after a crash, {} lost",
            lost.len()
        ),
        format!("every record the functions ended, by outcome: {totals}"),
    ];
    (figures, lost)
}
