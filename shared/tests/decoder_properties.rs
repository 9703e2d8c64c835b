//! Property tests: whatever bytes arrive, the decoders answer with an event or a typed error,
//! never a panic.

// Test code: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orderflow::event::examples;
use orderflow::sns::message_body;
use orderflow::{Event, EventType};
use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        Just(Value::String("OrderPlaced".into())),
        Just(Value::String("12.50".into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let from_bytes = Event::decode(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = message_body(text);
            // What the consumer reads an SQS body with: the same answer, error for error.
            prop_assert_eq!(Event::decode_str(text), from_bytes);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        prop_assert_eq!(Event::decode_str(&text), Event::decode(text.as_bytes()));
        let _ = Event::from_value(value);
    }

    #[test]
    fn a_valid_event_with_one_field_replaced_decodes_or_errs(
        type_index in 0usize..7,
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let event_type = EventType::all().nth(type_index).unwrap();
        let mut doc = serde_json::to_value(examples::example(event_type)).unwrap();
        let mut all = Vec::new();
        pointers(&doc, String::new(), &mut all);
        let pointer = pick.get(&all).clone();
        *doc.pointer_mut(&pointer).unwrap() = replacement;
        let bytes = serde_json::to_vec(&doc).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        prop_assert_eq!(Event::decode_str(text), Event::decode(&bytes));
        match Event::decode(&bytes) {
            // Whatever decodes must encode again and decode to the same event.
            Ok(event) => {
                let again = Event::decode(event.encode().unwrap().as_bytes()).unwrap();
                prop_assert_eq!(again, event);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn truncated_documents_are_malformed_not_panics(cut in 0usize..2000) {
        let json = examples::order_placed().encode().unwrap();
        let cut = cut.min(json.len() - 1);
        let err = Event::decode(&json.as_bytes()[..cut]).unwrap_err();
        prop_assert_eq!(err.kind(), "MalformedJson");
    }
}
