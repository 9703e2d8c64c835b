//! The checked-in JSON Schemas and the Rust decoder describe the same contract: every schema
//! accepts what our structs serialize, and a field is required by the schema exactly when the
//! decoder refuses a document without it.

// Test code: a failed call is a failed test, and the panic message says which.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jsonschema::Validator;
use orderflow::event::{Event, EventError, EventType, examples, schema};
use serde_json::{Value, json};

fn validator(event_type: EventType, version: u32) -> Validator {
    let text = schema::schema(event_type, version)
        .unwrap_or_else(|| panic!("no schema for {event_type} v{version}"));
    let schema: Value = serde_json::from_str(text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// A valid document of every known (type, version).
fn documents() -> Vec<(EventType, u32, Value)> {
    let mut docs: Vec<_> = EventType::all()
        .map(|t| {
            (
                t,
                t.current_version(),
                serde_json::to_value(examples::example(t)).unwrap(),
            )
        })
        .collect();
    let v1: Value =
        serde_json::from_str(include_str!("fixtures/example-order-placed-v1.json")).unwrap();
    docs.push((EventType::OrderPlaced, 1, v1));
    docs
}

#[test]
fn every_known_version_has_exactly_one_schema_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut expected: Vec<String> = EventType::all()
        .flat_map(|t| t.known_versions().map(move |v| schema::file_name(t, v)))
        .collect();
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    expected.sort();
    found.sort();
    assert_eq!(found, expected);
    for t in EventType::all() {
        for v in t.known_versions() {
            let on_disk = std::fs::read_to_string(dir.join(schema::file_name(t, v))).unwrap();
            assert_eq!(schema::schema(t, v), Some(on_disk.as_str()));
        }
        assert_eq!(schema::schema(t, t.current_version() + 1), None);
    }
}

#[test]
fn schemas_accept_what_we_write_and_the_decoder_accepts_them() {
    for (t, v, doc) in documents() {
        let errors: Vec<String> = validator(t, v)
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{t} v{v}: {errors:?}");
        Event::from_value(doc).unwrap_or_else(|e| panic!("{t} v{v}: {e}"));
    }
}

/// One field of a document: how to find it (JSON pointer), how errors name it, and whether the
/// schema requires it.
struct Field {
    pointer: String,
    path: String,
    required: bool,
}

/// Walks a schema alongside a document that has every field, listing the fields present.
fn fields(schema: &Value, doc: &Value, pointer: &str, path: &str, out: &mut Vec<Field>) {
    let schema = match schema.get("anyOf") {
        Some(options) => options
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o.get("properties").is_some())
            .unwrap_or(schema),
        None => schema,
    };
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let Some(value) = doc.get(name) else { continue };
        let field_pointer = format!("{pointer}/{name}");
        let field_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        out.push(Field {
            pointer: field_pointer.clone(),
            path: field_path.clone(),
            required: required.contains(&name.as_str()),
        });
        fields(property, value, &field_pointer, &field_path, out);
        if let (Some(items), Some(first)) = (property.get("items"), value.get(0)) {
            fields(
                items,
                first,
                &format!("{field_pointer}/0"),
                &format!("{field_path}[0]"),
                out,
            );
        }
    }
}

fn without(doc: &Value, pointer: &str) -> Value {
    let mut doc = doc.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    doc.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    doc
}

#[test]
fn a_field_is_required_by_the_schema_exactly_when_the_decoder_requires_it() {
    for (t, v, doc) in documents() {
        let validator = validator(t, v);
        let schema: Value = serde_json::from_str(schema::schema(t, v).unwrap()).unwrap();
        let mut found = Vec::new();
        fields(&schema, &doc, "", "", &mut found);
        assert!(
            found.iter().filter(|f| f.required).count() >= 10,
            "{t} v{v}: too few fields walked"
        );
        for field in found {
            let doc = without(&doc, &field.pointer);
            let decoded = Event::from_value(doc.clone());
            if field.required {
                assert!(
                    !validator.is_valid(&doc),
                    "{t} v{v}: schema accepts a document without {}",
                    field.path
                );
                assert_eq!(
                    decoded.unwrap_err(),
                    EventError::MissingField {
                        field: field.path.clone()
                    },
                    "{t} v{v}: decoder on a document without {}",
                    field.path
                );
            } else {
                assert!(
                    validator.is_valid(&doc),
                    "{t} v{v}: schema refuses a document without optional {}",
                    field.path
                );
                assert!(
                    decoded.is_ok(),
                    "{t} v{v}: decoder refuses a document without optional {}",
                    field.path
                );
            }
        }
    }
}

#[test]
fn schema_and_decoder_refuse_the_same_broken_values() {
    let doc = serde_json::to_value(examples::order_placed()).unwrap();
    let validator = validator(EventType::OrderPlaced, 2);
    let cases = [
        ("/data/items", json!([])),
        ("/data/items/0/quantity", json!(0)),
        ("/data/items/0/quantity", json!(-1)),
        ("/data/items/0/unitPrice", json!("0.00")),
        ("/data/items/0/unitPrice", json!("-3.50")),
        ("/data/currency", json!("eur")),
        ("/data/customerId", json!("")),
        ("/eventId", json!("not-a-uuid")),
        ("/occurredAt", json!("yesterday")),
        ("/eventVersion", json!(7)),
        ("/eventType", json!("OrderShipped")),
    ];
    for (pointer, value) in cases {
        let mut broken = doc.clone();
        *broken.pointer_mut(pointer).unwrap() = value.clone();
        assert!(
            !validator.is_valid(&broken),
            "schema accepts {pointer} = {value}"
        );
        assert!(
            Event::from_value(broken).is_err(),
            "decoder accepts {pointer} = {value}"
        );
    }
    // More than MAX_ORDER_LINES lines.
    let mut long = doc.clone();
    let line = long["data"]["items"][0].clone();
    long["data"]["items"] = json!(vec![line; orderflow::event::MAX_ORDER_LINES + 1]);
    long["data"]["total"] = json!("637.50");
    assert!(!validator.is_valid(&long), "schema accepts too many lines");
    assert!(
        matches!(Event::from_value(long), Err(EventError::InvalidField { field, .. }) if field == "data.items")
    );

    // Extra fields are allowed by both: readers ignore them.
    let mut extended = doc.clone();
    extended["data"]["giftWrap"] = json!(true);
    assert!(validator.is_valid(&extended));
    assert!(Event::from_value(extended).is_ok());
}
