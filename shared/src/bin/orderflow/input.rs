//! Reading events for the CLI: one event or a JSON array, from a file or standard input.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use orderflow::event::{Event, EventError};

/// Reads and validates every event; fails, naming each bad one, if any is invalid.
pub(crate) fn read_events(file: Option<&Path>) -> anyhow::Result<Vec<Event>> {
    let (bytes, origin) = match file {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            (bytes, "standard input".to_owned())
        }
    };
    parse_events(&bytes).map_err(|problems| {
        anyhow::anyhow!(
            "{origin} holds invalid events; nothing was published:\n{}",
            problems.join("\n")
        )
    })
}

/// One event (an object) or many (an array); every problem is listed, one per line.
fn parse_events(bytes: &[u8]) -> Result<Vec<Event>, Vec<String>> {
    let starts_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !starts_array {
        return Event::decode(bytes)
            .map(|e| vec![e])
            .map_err(|e| vec![format!("  event: {e}")]);
    }
    let values: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(|err| {
        let err = EventError::MalformedJson {
            line: err.line(),
            column: err.column(),
            reason: err.to_string(),
        };
        vec![format!("  {err}")]
    })?;
    if values.is_empty() {
        return Err(vec!["  the array holds no events".to_owned()]);
    }
    let mut events = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match Event::from_value(value) {
            Ok(event) => events.push(event),
            Err(err) => problems.push(format!("  event [{i}]: {err}")),
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow::event::examples;

    #[test]
    fn reads_one_event_or_an_array() {
        let one = serde_json::to_string(&examples::order_placed()).unwrap();
        assert_eq!(parse_events(one.as_bytes()).unwrap().len(), 1);
        let many = format!("[{one}, {one}]");
        assert_eq!(parse_events(many.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn lists_every_invalid_event_by_index() {
        let good = serde_json::to_string(&examples::order_placed()).unwrap();
        let problems = parse_events(format!("[{good}, {{}}, 3]").as_bytes()).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].starts_with("  event [1]: missing field `eventId`"),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("  event [2]:"), "{problems:?}");
        assert!(parse_events(b"[]").is_err());
        assert!(parse_events(b"{ nope").unwrap_err()[0].contains("malformed JSON"));
    }
}
