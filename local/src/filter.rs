//! Lambda's event filtering (`FilterCriteria`): a record passes when it matches any of the
//! patterns. A pattern is a JSON object whose leaves are lists of matchers: a literal value,
//! `{"prefix": …}`, `{"suffix": …}`, `{"anything-but": …}`, `{"exists": bool}`,
//! `{"numeric": [">", 0, "<=", 5]}`; an object recurses into the record.

use serde_json::Value;

/// Whether `record` passes `filters` (no filters: everything passes).
pub fn passes(filters: &[Value], record: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|pattern| matches(pattern, Some(record)))
}

fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(key, sub)| matches(sub, value.and_then(|v| v.get(key)))),
        Value::Array(matchers) => matchers.iter().any(|m| matcher(m, value)),
        literal => value == Some(literal),
    }
}

fn matcher(matcher: &Value, value: Option<&Value>) -> bool {
    // A list in the record matches when any of its elements does.
    if let Some(Value::Array(items)) = value
        && !matches!(matcher, Value::Object(m) if m.contains_key("exists"))
    {
        return items.iter().any(|item| self::matcher(matcher, Some(item)));
    }
    let Value::Object(rule) = matcher else {
        return value == Some(matcher);
    };
    let Some((kind, arg)) = rule.iter().next() else {
        return false;
    };
    match kind.as_str() {
        "exists" => arg.as_bool() == Some(value.is_some_and(|v| !v.is_null())),
        "prefix" => value
            .and_then(Value::as_str)
            .zip(arg.as_str())
            .is_some_and(|(v, p)| v.starts_with(p)),
        "suffix" => value
            .and_then(Value::as_str)
            .zip(arg.as_str())
            .is_some_and(|(v, s)| v.ends_with(s)),
        "anything-but" => {
            let Some(value) = value else { return false };
            match arg {
                Value::Array(excluded) => !excluded.contains(value),
                Value::Object(inner) => match inner.get("prefix").and_then(Value::as_str) {
                    Some(prefix) => !value.as_str().is_some_and(|v| v.starts_with(prefix)),
                    None => false,
                },
                single => value != single,
            }
        }
        "numeric" => {
            let Some(number) = value.and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            else {
                return false;
            };
            let Some(conditions) = arg.as_array() else {
                return false;
            };
            conditions.chunks(2).all(|pair| {
                let (Some(op), Some(bound)) =
                    (pair[0].as_str(), pair.get(1).and_then(Value::as_f64))
                else {
                    return false;
                };
                match op {
                    ">" => number > bound,
                    ">=" => number >= bound,
                    "<" => number < bound,
                    "<=" => number <= bound,
                    "=" => number == bound,
                    _ => false,
                }
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_relays_outbox_filter() {
        let pattern = json!({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "OUTBOX#"}]}}}});
        let record = |name: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": "ORDER#1"}, "sk": {"S": sk}}}});
        assert!(passes(
            std::slice::from_ref(&pattern),
            &record("INSERT", "OUTBOX#e1")
        ));
        assert!(!passes(
            std::slice::from_ref(&pattern),
            &record("MODIFY", "OUTBOX#e1")
        ));
        assert!(!passes(&[pattern], &record("INSERT", "ORDER")));
        assert!(passes(&[], &record("REMOVE", "x")));
    }

    #[test]
    fn every_matcher() {
        let record = json!({"body": {"type": "OrderPlaced", "total": 40.5, "tags": ["a", "b"]}, "attributes": {}});
        let check = |pattern: Value| passes(&[pattern], &record);
        assert!(check(
            json!({"body": {"type": ["OrderPlaced", "OrderCancelled"]}})
        ));
        assert!(check(
            json!({"body": {"type": [{"anything-but": ["OrderCancelled"]}]}})
        ));
        assert!(!check(
            json!({"body": {"type": [{"anything-but": "OrderPlaced"}]}})
        ));
        assert!(check(json!({"body": {"type": [{"suffix": "Placed"}]}})));
        assert!(check(
            json!({"body": {"total": [{"numeric": [">", 0, "<=", 100]}]}})
        ));
        assert!(!check(json!({"body": {"total": [{"numeric": [">", 50]}]}})));
        assert!(check(json!({"body": {"missing": [{"exists": false}]}})));
        assert!(!check(json!({"body": {"type": [{"exists": false}]}})));
        assert!(check(json!({"body": {"tags": ["b"]}})));
        // Any filter suffices.
        assert!(passes(
            &[
                json!({"body": {"type": ["No"]}}),
                json!({"body": {"type": ["OrderPlaced"]}})
            ],
            &record
        ));
    }
}
