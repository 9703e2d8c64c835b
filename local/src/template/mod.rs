//! The SAM/CloudFormation template: parameters, conditions, and the intrinsic functions the
//! resources use, resolved the way CloudFormation resolves them. Anything this runner does not
//! understand is refused with the resource's name, never guessed.

mod intrinsics;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

pub use intrinsics::{Attributes, resolve, text as text_of};

/// Why the template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file cannot be read or parsed.
    #[error("cannot read the template {path}: {reason}")]
    Unreadable {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// A `--param` names no parameter, or a value is not allowed.
    #[error("parameter {name}: {reason}")]
    Parameter {
        /// The parameter.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A construct this runner does not understand: it refuses rather than guesses.
    #[error("{at}: {reason}")]
    Unsupported {
        /// The resource (or section) it is in.
        at: String,
        /// What it is.
        reason: String,
    },
}

/// A resource of the template, with its logical id.
#[derive(Clone, Debug)]
pub struct Resource {
    /// Logical id, e.g. `OrdersQueue`.
    pub logical_id: String,
    /// `Type`, e.g. `AWS::SQS::Queue`.
    pub kind: String,
    /// `Properties`, unresolved.
    pub properties: Yaml,
    /// `Metadata`, unresolved.
    pub metadata: Yaml,
    /// `Condition`, if any.
    pub condition: Option<String>,
    /// Explicit `DependsOn`.
    pub depends_on: Vec<String>,
}

/// A loaded template with its parameter values and evaluated conditions.
#[derive(Clone, Debug)]
pub struct Template {
    root: Yaml,
    /// Parameter values (defaults, then overrides), as CloudFormation passes them: strings.
    pub parameters: BTreeMap<String, String>,
    /// Condition values.
    pub conditions: BTreeMap<String, bool>,
    /// Pseudo parameters: stack name, region, account id.
    pub pseudo: Pseudo,
}

/// The pseudo parameters (`AWS::StackName`, `AWS::Region`, …).
#[derive(Clone, Debug)]
pub struct Pseudo {
    /// `AWS::StackName`.
    pub stack_name: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId`.
    pub account_id: String,
}

impl Pseudo {
    /// The value of `AWS::<name>`, if it is a pseudo parameter.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::StackName" => self.stack_name.clone(),
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => self.account_id.clone(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackId" => format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/local",
                self.region, self.account_id, self.stack_name
            ),
            _ => return None,
        })
    }
}

impl Template {
    /// Reads `path` and applies parameter `overrides` (`K=V`) over the defaults.
    pub fn load(
        path: &Path,
        overrides: &[(String, String)],
        pseudo: Pseudo,
    ) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|err| TemplateError::Unreadable {
            path: path.display().to_string(),
            reason: err.to_string(),
        })?;
        Self::parse(&text, overrides, pseudo).map_err(|err| match err {
            TemplateError::Unreadable { reason, .. } => TemplateError::Unreadable {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses template text.
    pub fn parse(
        text: &str,
        overrides: &[(String, String)],
        pseudo: Pseudo,
    ) -> Result<Self, TemplateError> {
        let root: Yaml =
            serde_yaml_ng::from_str(text).map_err(|err| TemplateError::Unreadable {
                path: "(text)".into(),
                reason: err.to_string(),
            })?;
        let mut parameters = BTreeMap::new();
        if let Some(declared) = root.get("Parameters").and_then(Yaml::as_mapping) {
            for (name, spec) in declared {
                let name = name.as_str().unwrap_or_default().to_owned();
                if let Some(default) = spec.get("Default") {
                    parameters.insert(name, scalar(default));
                }
            }
        }
        for (name, value) in overrides {
            let Some(spec) = root.get("Parameters").and_then(|p| p.get(name.as_str())) else {
                return Err(TemplateError::Parameter {
                    name: name.clone(),
                    reason: "the template declares no such parameter".into(),
                });
            };
            if let Some(allowed) = spec.get("AllowedValues").and_then(Yaml::as_sequence) {
                let allowed: Vec<String> = allowed.iter().map(scalar).collect();
                if !allowed.contains(value) {
                    return Err(TemplateError::Parameter {
                        name: name.clone(),
                        reason: format!("`{value}` is not one of {allowed:?}"),
                    });
                }
            }
            parameters.insert(name.clone(), value.clone());
        }
        if let Some(declared) = root.get("Parameters").and_then(Yaml::as_mapping) {
            for (name, _) in declared {
                let name = name.as_str().unwrap_or_default();
                if !parameters.contains_key(name) {
                    return Err(TemplateError::Parameter {
                        name: name.to_owned(),
                        reason: "has no default; give it with --param".into(),
                    });
                }
            }
        }
        let mut template = Template {
            root,
            parameters,
            conditions: BTreeMap::new(),
            pseudo,
        };
        template.conditions = template.evaluate_conditions()?;
        Ok(template)
    }

    fn evaluate_conditions(&self) -> Result<BTreeMap<String, bool>, TemplateError> {
        let mut values = BTreeMap::new();
        let Some(declared) = self.root.get("Conditions").and_then(Yaml::as_mapping) else {
            return Ok(values);
        };
        // Conditions may refer to conditions declared after them: evaluate until all are known.
        let mut pending: Vec<(String, Yaml)> = declared
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.clone()))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut still = Vec::new();
            for (name, expression) in pending {
                let probe = Template {
                    conditions: values.clone(),
                    ..self.clone()
                };
                match resolve(
                    &expression,
                    &probe,
                    &NoResources,
                    &format!("Conditions.{name}"),
                ) {
                    Ok(Some(Json::Bool(value))) => {
                        values.insert(name, value);
                    }
                    Ok(other) => {
                        return Err(TemplateError::Unsupported {
                            at: format!("Conditions.{name}"),
                            reason: format!("does not evaluate to true or false: {other:?}"),
                        });
                    }
                    Err(TemplateError::Unsupported { reason, .. })
                        if reason.starts_with("unknown condition") =>
                    {
                        still.push((name, expression));
                    }
                    Err(err) => return Err(err),
                }
            }
            if still.len() == before {
                return Err(TemplateError::Unsupported {
                    at: "Conditions".into(),
                    reason: format!(
                        "conditions that refer to each other or to unknown ones: {:?}",
                        still.iter().map(|(n, _)| n).collect::<Vec<_>>()
                    ),
                });
            }
            pending = still;
        }
        Ok(values)
    }

    /// The `Globals.Function` section (SAM), if any.
    pub fn function_globals(&self) -> &Yaml {
        self.root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .unwrap_or(&Yaml::Null)
    }

    /// Every resource, in the order the template lists them.
    pub fn resources(&self) -> Result<Vec<Resource>, TemplateError> {
        let Some(resources) = self.root.get("Resources").and_then(Yaml::as_mapping) else {
            return Err(TemplateError::Unsupported {
                at: "Resources".into(),
                reason: "the template has no Resources".into(),
            });
        };
        let mut out = Vec::new();
        for (id, resource) in resources {
            let logical_id = id.as_str().unwrap_or_default().to_owned();
            let kind = resource
                .get("Type")
                .and_then(Yaml::as_str)
                .ok_or_else(|| TemplateError::Unsupported {
                    at: logical_id.clone(),
                    reason: "has no Type".into(),
                })?
                .to_owned();
            let depends_on = match resource.get("DependsOn") {
                Some(Yaml::String(one)) => vec![one.clone()],
                Some(Yaml::Sequence(many)) => many
                    .iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            out.push(Resource {
                logical_id,
                kind,
                properties: resource.get("Properties").cloned().unwrap_or(Yaml::Null),
                metadata: resource.get("Metadata").cloned().unwrap_or(Yaml::Null),
                condition: resource
                    .get("Condition")
                    .and_then(Yaml::as_str)
                    .map(str::to_owned),
                depends_on,
            });
        }
        Ok(out)
    }

    /// Whether `resource` exists under the template's conditions.
    pub fn is_active(&self, resource: &Resource) -> Result<bool, TemplateError> {
        match &resource.condition {
            None => Ok(true),
            Some(name) => {
                self.conditions
                    .get(name)
                    .copied()
                    .ok_or_else(|| TemplateError::Unsupported {
                        at: resource.logical_id.clone(),
                        reason: format!("unknown condition {name}"),
                    })
            }
        }
    }

    /// The `Outputs` section, unresolved.
    pub fn outputs(&self) -> Vec<(String, Yaml)> {
        self.root
            .get("Outputs")
            .and_then(Yaml::as_mapping)
            .map(|outputs| {
                outputs
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.get("Value")?.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A YAML scalar as CloudFormation passes parameters: a string.
fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => String::new(),
        other => format!("{other:?}"),
    }
}

/// Resources while conditions are evaluated: there are none to refer to.
struct NoResources;

impl Attributes for NoResources {
    fn reference(&self, logical_id: &str) -> Option<Json> {
        let _ = logical_id;
        None
    }
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<Json> {
        let _ = (logical_id, attribute);
        None
    }
}

/// The logical ids an unresolved value refers to (`Ref`, `Fn::GetAtt`, `${X}` in `Fn::Sub`),
/// parameters and pseudo parameters included (callers keep the resources).
pub fn references(value: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    intrinsics::collect_references(value, &mut out);
    out
}
