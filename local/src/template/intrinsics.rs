//! Intrinsic functions and conditions: `Ref`, `Fn::GetAtt`, `Fn::Sub` (both forms), `Fn::If`,
//! `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Fn::Select`, `Fn::Join`, `Condition`, and
//! the pseudo parameters. Short (`!Ref`) and long (`{Ref: …}`) forms alike.

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use super::{Template, TemplateError};

/// What resources provisioned so far answer to `Ref` and `Fn::GetAtt`.
pub trait Attributes {
    /// `Ref` of a resource.
    fn reference(&self, logical_id: &str) -> Option<Json>;
    /// `Fn::GetAtt` of a resource.
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<Json>;
}

/// The intrinsic a value is, if any: its long name and argument.
fn intrinsic(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let long = match name {
                "Ref" | "Condition" => name.to_owned(),
                other => format!("Fn::{other}"),
            };
            Some((long, &tagged.value))
        }
        Yaml::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key == "Condition" || key.starts_with("Fn::"))
                .then(|| (key.to_owned(), arg))
        }
        _ => None,
    }
}

fn unsupported(at: &str, reason: impl Into<String>) -> TemplateError {
    TemplateError::Unsupported {
        at: at.to_owned(),
        reason: reason.into(),
    }
}

fn yaml_scalar(value: &Yaml) -> Json {
    match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => n
            .as_i64()
            .map(Json::from)
            .or_else(|| n.as_u64().map(Json::from))
            .or_else(|| n.as_f64().map(Json::from))
            .unwrap_or(Json::Null),
        Yaml::String(s) => Json::String(s.clone()),
        _ => Json::Null,
    }
}

/// A resolved value as text (what `Fn::Sub`, `Fn::Join` and parameters deal in).
pub fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn list<'a>(arg: &'a Yaml, at: &str, name: &str, len: usize) -> Result<&'a [Yaml], TemplateError> {
    match arg.as_sequence() {
        Some(items) if items.len() == len => Ok(items),
        _ => Err(unsupported(at, format!("{name} takes a list of {len}"))),
    }
}

fn reference(
    name: &str,
    template: &Template,
    resources: &dyn Attributes,
    at: &str,
) -> Result<Option<Json>, TemplateError> {
    if name == "AWS::NoValue" {
        return Ok(None);
    }
    if let Some(value) = template.parameters.get(name) {
        return Ok(Some(Json::String(value.clone())));
    }
    if let Some(value) = template.pseudo.get(name) {
        return Ok(Some(Json::String(value)));
    }
    if name.starts_with("AWS::") {
        return Err(unsupported(
            at,
            format!("the pseudo parameter {name} is not known here"),
        ));
    }
    resources
        .reference(name)
        .map(Some)
        .ok_or_else(|| unsupported(at, format!("Ref {name}: no such parameter or resource")))
}

fn get_att(
    target: &str,
    attribute: &str,
    resources: &dyn Attributes,
    at: &str,
) -> Result<Json, TemplateError> {
    resources.attribute(target, attribute).ok_or_else(|| {
        unsupported(
            at,
            format!("GetAtt {target}.{attribute}: not an attribute this runner knows"),
        )
    })
}

fn substitute(
    pattern: &str,
    variables: &serde_json::Map<String, Json>,
    template: &Template,
    resources: &dyn Attributes,
    at: &str,
) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| unsupported(at, format!("Sub: unclosed ${{ in `{pattern}`")))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else if let Some(value) = variables.get(name) {
            out.push_str(&text(value));
        } else if let Some((target, attribute)) = name.split_once('.') {
            out.push_str(&text(&get_att(target, attribute, resources, at)?));
        } else {
            let value = reference(name, template, resources, at)?
                .ok_or_else(|| unsupported(at, "Sub: AWS::NoValue in a string"))?;
            out.push_str(&text(&value));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn condition(value: Option<Json>, at: &str) -> Result<bool, TemplateError> {
    match value {
        Some(Json::Bool(b)) => Ok(b),
        other => Err(unsupported(
            at,
            format!("a condition must be true or false, not {other:?}"),
        )),
    }
}

/// Resolves `value`; `None` is `AWS::NoValue` (the property is left out).
pub fn resolve(
    value: &Yaml,
    template: &Template,
    resources: &dyn Attributes,
    at: &str,
) -> Result<Option<Json>, TemplateError> {
    let r = |v: &Yaml| resolve(v, template, resources, at);
    if let Some((name, arg)) = intrinsic(value) {
        return Ok(match name.as_str() {
            "Ref" => {
                let target = arg
                    .as_str()
                    .ok_or_else(|| unsupported(at, "Ref takes a name"))?;
                return reference(target, template, resources, at);
            }
            "Condition" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| unsupported(at, "Condition takes a name"))?;
                let value = template
                    .conditions
                    .get(name)
                    .ok_or_else(|| unsupported(at, format!("unknown condition {name}")))?;
                Some(Json::Bool(*value))
            }
            "Fn::GetAtt" => {
                let (target, attribute) = match arg {
                    Yaml::String(s) => s
                        .split_once('.')
                        .map(|(t, a)| (t.to_owned(), a.to_owned()))
                        .ok_or_else(|| {
                            unsupported(at, format!("GetAtt `{s}` needs Resource.Attribute"))
                        })?,
                    Yaml::Sequence(items) if items.len() == 2 => (
                        items[0].as_str().unwrap_or_default().to_owned(),
                        text(&r(&items[1])?.unwrap_or(Json::Null)),
                    ),
                    _ => return Err(unsupported(at, "GetAtt takes Resource.Attribute")),
                };
                Some(get_att(&target, &attribute, resources, at)?)
            }
            "Fn::Sub" => {
                let (pattern, variables) = match arg {
                    Yaml::String(s) => (s.clone(), serde_json::Map::new()),
                    Yaml::Sequence(items) if items.len() == 2 => {
                        let pattern = items[0]
                            .as_str()
                            .ok_or_else(|| unsupported(at, "Sub's first item must be a string"))?
                            .to_owned();
                        let variables = match r(&items[1])? {
                            Some(Json::Object(map)) => map,
                            _ => return Err(unsupported(at, "Sub's second item must be a map")),
                        };
                        (pattern, variables)
                    }
                    _ => return Err(unsupported(at, "Sub takes a string or [string, map]")),
                };
                Some(Json::String(substitute(
                    &pattern, &variables, template, resources, at,
                )?))
            }
            "Fn::If" => {
                let items = list(arg, at, "If", 3)?;
                let name = items[0]
                    .as_str()
                    .ok_or_else(|| unsupported(at, "If takes a condition name"))?;
                let chosen = *template
                    .conditions
                    .get(name)
                    .ok_or_else(|| unsupported(at, format!("unknown condition {name}")))?;
                return r(if chosen { &items[1] } else { &items[2] });
            }
            "Fn::Equals" => {
                let items = list(arg, at, "Equals", 2)?;
                let (a, b) = (r(&items[0])?, r(&items[1])?);
                Some(Json::Bool(a.as_ref().map(text) == b.as_ref().map(text)))
            }
            "Fn::Not" => {
                let items = list(arg, at, "Not", 1)?;
                Some(Json::Bool(!condition(r(&items[0])?, at)?))
            }
            "Fn::And" | "Fn::Or" => {
                let items = arg
                    .as_sequence()
                    .ok_or_else(|| unsupported(at, format!("{name} takes a list")))?;
                let values = items
                    .iter()
                    .map(|i| condition(r(i)?, at))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Json::Bool(if name == "Fn::And" {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                }))
            }
            "Fn::Select" => {
                let items = list(arg, at, "Select", 2)?;
                let index: usize = text(&r(&items[0])?.unwrap_or(Json::Null))
                    .parse()
                    .map_err(|_| unsupported(at, "Select's index must be a number"))?;
                match r(&items[1])? {
                    Some(Json::Array(values)) => Some(
                        values
                            .get(index)
                            .cloned()
                            .ok_or_else(|| unsupported(at, format!("Select: no item {index}")))?,
                    ),
                    _ => return Err(unsupported(at, "Select takes a list")),
                }
            }
            "Fn::Join" => {
                let items = list(arg, at, "Join", 2)?;
                let separator = items[0].as_str().unwrap_or_default();
                match r(&items[1])? {
                    Some(Json::Array(values)) => Some(Json::String(
                        values.iter().map(text).collect::<Vec<_>>().join(separator),
                    )),
                    _ => return Err(unsupported(at, "Join takes a list")),
                }
            }
            other => {
                return Err(unsupported(
                    at,
                    format!("the intrinsic function {other} is not supported by this runner"),
                ));
            }
        });
    }
    Ok(Some(match value {
        Yaml::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (key, item) in map {
                let key = key
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| text(&yaml_scalar(key)));
                if let Some(resolved) = r(item)? {
                    out.insert(key, resolved);
                }
            }
            Json::Object(out)
        }
        Yaml::Sequence(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Some(resolved) = r(item)? {
                    out.push(resolved);
                }
            }
            Json::Array(out)
        }
        Yaml::Tagged(tagged) => {
            return Err(unsupported(at, format!("unknown tag {}", tagged.tag)));
        }
        scalar => yaml_scalar(scalar),
    }))
}

/// Collects the names referred to by `Ref`, `Fn::GetAtt` and `Fn::Sub` in `value`.
pub(super) fn collect_references(value: &Yaml, out: &mut Vec<String>) {
    if let Some((name, arg)) = intrinsic(value) {
        match name.as_str() {
            "Ref" => out.extend(arg.as_str().map(str::to_owned)),
            "Fn::GetAtt" => match arg {
                Yaml::String(s) => out.extend(s.split('.').next().map(str::to_owned)),
                Yaml::Sequence(items) => {
                    out.extend(items.first().and_then(Yaml::as_str).map(str::to_owned))
                }
                _ => {}
            },
            "Fn::Sub" => {
                let (pattern, rest) = match arg {
                    Yaml::String(s) => (s.as_str(), None),
                    Yaml::Sequence(items) => (
                        items.first().and_then(Yaml::as_str).unwrap_or(""),
                        items.get(1),
                    ),
                    _ => ("", None),
                };
                let mut search = pattern;
                while let Some(start) = search.find("${") {
                    let after = &search[start + 2..];
                    let Some(end) = after.find('}') else { break };
                    let name = &after[..end];
                    if !name.starts_with('!') {
                        out.push(name.split('.').next().unwrap_or(name).to_owned());
                    }
                    search = &after[end + 1..];
                }
                if let Some(rest) = rest {
                    collect_references(rest, out);
                }
            }
            _ => collect_references(arg, out),
        }
        return;
    }
    match value {
        Yaml::Mapping(map) => map.values().for_each(|v| collect_references(v, out)),
        Yaml::Sequence(items) => items.iter().for_each(|v| collect_references(v, out)),
        Yaml::Tagged(tagged) => collect_references(&tagged.value, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::super::{Pseudo, Template};
    use super::*;

    struct Fake;
    impl Attributes for Fake {
        fn reference(&self, id: &str) -> Option<Json> {
            (id == "Queue").then(|| json!("https://queue/url"))
        }
        fn attribute(&self, id: &str, attribute: &str) -> Option<Json> {
            (id == "Queue" && attribute == "Arn").then(|| json!("arn:aws:sqs:eu-west-1:1:q"))
        }
    }

    fn template(extra: &[(&str, &str)]) -> Template {
        let text = r#"
Parameters:
  Ordering: {Type: String, Default: Standard, AllowedValues: [Standard, Fifo]}
  Count: {Type: Number, Default: 5}
Conditions:
  IsFifo: !Equals [!Ref Ordering, Fifo]
  NotFifo: !Not [!Condition IsFifo]
  Both: {"Fn::And": [{Condition: NotFifo}, !Equals [a, a]]}
Resources: {}
"#;
        let overrides: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Template::parse(
            text,
            &overrides,
            Pseudo {
                stack_name: "stack".into(),
                region: "eu-west-1".into(),
                account_id: "123456789012".into(),
            },
        )
        .unwrap()
    }

    fn eval(yaml: &str, template: &Template) -> Result<Option<Json>, TemplateError> {
        let value: Yaml = serde_yaml_ng::from_str(yaml).unwrap();
        resolve(&value, template, &Fake, "Test")
    }

    #[test]
    fn intrinsics_and_conditions_resolve_as_cloudformation_does() {
        let standard = template(&[]);
        assert_eq!(
            standard.conditions,
            BTreeMap::from([
                ("Both".into(), true),
                ("IsFifo".into(), false),
                ("NotFifo".into(), true)
            ])
        );
        let cases = [
            ("!Ref Count", json!("5")),
            ("!GetAtt Queue.Arn", json!("arn:aws:sqs:eu-west-1:1:q")),
            (
                "{'Fn::GetAtt': [Queue, Arn]}",
                json!("arn:aws:sqs:eu-west-1:1:q"),
            ),
            (
                "!Sub '${AWS::StackName}-events.fifo'",
                json!("stack-events.fifo"),
            ),
            (
                "!Sub 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root ${Queue.Arn} ${!Literal}'",
                json!("arn:aws:iam::123456789012:root arn:aws:sqs:eu-west-1:1:q ${Literal}"),
            ),
            (
                "!Sub ['${A}/${Queue}', {A: !Ref Count}]",
                json!("5/https://queue/url"),
            ),
            ("!If [IsFifo, yes, no]", json!("no")),
            ("!Select [1, [a, b, c]]", json!("b")),
            ("!Join ['-', [a, !Ref Count]]", json!("a-5")),
            ("{Ref: AWS::Region}", json!("eu-west-1")),
        ];
        for (yaml, expected) in cases {
            assert_eq!(eval(yaml, &standard).unwrap(), Some(expected), "{yaml}");
        }
        // AWS::NoValue removes the property.
        assert_eq!(
            eval(
                "{a: !If [IsFifo, true, !Ref AWS::NoValue], b: 1}",
                &standard
            )
            .unwrap(),
            Some(json!({"b": 1}))
        );
        let fifo = template(&[("Ordering", "Fifo")]);
        assert_eq!(
            eval("!If [IsFifo, yes, no]", &fifo).unwrap(),
            Some(json!("yes"))
        );
    }

    #[test]
    fn what_it_does_not_understand_is_refused_by_name() {
        let t = template(&[]);
        for (yaml, says) in [
            ("!ImportValue other-stack-output", "Fn::ImportValue"),
            ("!GetAtt Queue.QueueName", "GetAtt Queue.QueueName"),
            ("!Ref Missing", "Ref Missing"),
            ("!FindInMap [a, b, c]", "Fn::FindInMap"),
        ] {
            let err = eval(yaml, &t).unwrap_err().to_string();
            assert!(
                err.starts_with("Test: ") && err.contains(says),
                "{yaml}: {err}"
            );
        }
        let err = Template::parse(
            "Parameters: {A: {Type: String, AllowedValues: [x]}}\nResources: {}",
            &[("A".into(), "y".into())],
            Pseudo {
                stack_name: "s".into(),
                region: "r".into(),
                account_id: "1".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("not one of"), "{err}");
    }
}
