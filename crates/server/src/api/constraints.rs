//! The rules the services enforce, written into the spec.
//!
//! Every limit a request field is held to is a constant of the service that
//! enforces it (`memories::TITLE_MAX_CHARS`, `keys::MAX_GRACE_SECONDS`, …).
//! The tables below say which schema property or parameter each rule applies
//! to and of which kind it is; [`annotate`] turns them into JSON Schema
//! keywords (`minLength`, `maxLength`, `pattern`, `minimum`, `maximum`,
//! `maxItems`, `enum`) in the spec the server serves and `cargo xtask gen`
//! commits. So a limit changed in the service changes the spec with it, and
//! a table entry that names no property fails `every_constraint_applies`.
//!
//! Request bodies refuse unknown fields (`deny_unknown_fields`); their
//! schemas say so with `additionalProperties: false`.
//!
//! The MCP tools take the same fields, so [`annotate_tool`] writes the same
//! rules into their input schemas: a tool's REST body ([`TOOL_BODIES`]) and
//! its other arguments ([`TOOL_ARGS`]) name the rules here, never a copy.

use serde_yaml::{Mapping, Value};

use crate::{
    scope::Scope,
    service::{accounts, audit, idempotency, keys, memories, search_query, validate},
};

/// The kind of check a service makes, as schema keywords.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// [`validate::text`]: trimmed, 1..=max characters, not blank, no
    /// control characters.
    Text { max: usize },
    /// Memory content: 1..=max characters, not blank, no NUL.
    Content { max: usize },
    /// [`validate::email`].
    Email,
    /// A password: `min` characters up to `max_bytes` bytes of UTF-8
    /// (`maxLength` states the bytes; an ASCII password has as many
    /// characters).
    Password { min: usize, max_bytes: usize },
    /// [`validate::range`].
    Int { min: i64, max: i64 },
    /// Tags: at most `max_items` entries, each a [`Rule::Text`] of `max`
    /// characters without commas.
    Tags { max_items: usize, max: usize },
    /// Scope names: 1..=max_items entries of the known scopes.
    Scopes { max_items: usize },
    /// A search query: at most `max` characters and not blank.
    Query { max: usize },
    /// [`idempotency::validate_key`]: 1..=max printable ASCII characters.
    Ascii { max: usize },
}

/// Control characters (`char::is_control`: C0, DEL and C1).
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// Text that is not blank and holds no control character nor any of
/// `also_excluded`: [`validate::text`]'s rule as a pattern.
fn text_pattern(also_excluded: &str) -> String {
    let allowed = format!("[^{also_excluded}{CONTROL}]");
    format!(r"^{allowed}*[^{also_excluded}\s{CONTROL}]{allowed}*$")
}

impl Rule {
    /// The JSON Schema keywords of the rule, for a property of type `string`,
    /// `integer` or `array`.
    fn keywords(self) -> Vec<(&'static str, Value)> {
        let n = |v: usize| Value::from(v as u64);
        match self {
            Rule::Text { max } => vec![
                ("minLength", n(1)),
                ("maxLength", n(max)),
                ("pattern", text_pattern("").into()),
            ],
            Rule::Content { max } => vec![
                ("minLength", n(1)),
                ("maxLength", n(max)),
                ("pattern", r"^[^\u0000]*\S[^\u0000]*$".into()),
            ],
            Rule::Email => vec![
                ("format", "email".into()),
                ("minLength", n(3)),
                ("maxLength", n(validate::EMAIL_MAX_CHARS)),
            ],
            Rule::Password { min, max_bytes } => {
                vec![("minLength", n(min)), ("maxLength", n(max_bytes))]
            }
            Rule::Int { min, max } => vec![("minimum", min.into()), ("maximum", max.into())],
            Rule::Tags { max_items, max } => vec![
                ("maxItems", n(max_items)),
                (
                    "items",
                    // Commas separate tags in query strings.
                    Value::Mapping(mapping([
                        ("type", "string".into()),
                        ("minLength", n(1)),
                        ("maxLength", n(max)),
                        ("pattern", text_pattern(",").into()),
                    ])),
                ),
            ],
            Rule::Scopes { max_items } => vec![
                ("minItems", n(1)),
                ("maxItems", n(max_items)),
                (
                    "items",
                    Value::Mapping(mapping([
                        ("type", "string".into()),
                        (
                            "enum",
                            Value::Sequence(Scope::ALL.iter().map(|s| s.as_str().into()).collect()),
                        ),
                    ])),
                ),
            ],
            Rule::Query { max } => vec![
                ("minLength", n(1)),
                ("maxLength", n(max)),
                ("pattern", r"\S".into()),
            ],
            Rule::Ascii { max } => vec![
                ("minLength", n(1)),
                ("maxLength", n(max)),
                ("pattern", "^[\\x20-\\x7e]+$".into()),
            ],
        }
    }
}

fn mapping<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Mapping {
    pairs
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect()
}

const NAME: Rule = Rule::Text {
    max: validate::NAME_MAX_CHARS,
};
const TITLE: Rule = Rule::Text {
    max: memories::TITLE_MAX_CHARS,
};
const CONTENT: Rule = Rule::Content {
    max: memories::CONTENT_MAX_CHARS,
};
const TAGS: Rule = Rule::Tags {
    max_items: memories::MAX_TAGS,
    max: memories::TAG_MAX_CHARS,
};
const PASSWORD: Rule = Rule::Password {
    min: accounts::PASSWORD_MIN_CHARS,
    max_bytes: accounts::PASSWORD_MAX_BYTES,
};
const MEMORY_LIMIT: Rule = Rule::Int {
    min: 1,
    max: memories::MAX_LIMIT,
};

/// `(schema, property, rule)` for request body fields.
pub const FIELDS: &[(&str, &str, Rule)] = &[
    ("RegisterRequest", "name", NAME),
    ("RegisterRequest", "email", Rule::Email),
    ("RegisterRequest", "password", PASSWORD),
    ("SetPasswordRequest", "password", PASSWORD),
    ("SetPasswordRequest", "email", Rule::Email),
    ("CreateKeyRequest", "name", NAME),
    (
        "CreateKeyRequest",
        "scopes",
        Rule::Scopes {
            max_items: Scope::ALL.len(),
        },
    ),
    (
        "CreateKeyRequest",
        "expires_in_days",
        Rule::Int {
            min: 1,
            max: keys::MAX_EXPIRES_IN_DAYS,
        },
    ),
    (
        "RotateKeyRequest",
        "grace_seconds",
        Rule::Int {
            min: 0,
            max: keys::MAX_GRACE_SECONDS,
        },
    ),
    ("CreateMemoryRequest", "title", TITLE),
    ("CreateMemoryRequest", "content", CONTENT),
    ("CreateMemoryRequest", "tags", TAGS),
    ("UpdateMemoryRequest", "title", TITLE),
    ("UpdateMemoryRequest", "content", CONTENT),
    ("UpdateMemoryRequest", "tags", TAGS),
    (
        "SearchRequest",
        "query",
        Rule::Query {
            max: search_query::MAX_QUERY_CHARS,
        },
    ),
    ("SearchRequest", "tags", TAGS),
    ("SearchRequest", "limit", MEMORY_LIMIT),
];

/// `(operationId, parameter, rule)` for query and header parameters.
pub const PARAMS: &[(&str, &str, Rule)] = &[
    ("memory_list", "limit", MEMORY_LIMIT),
    (
        "audit_list",
        "limit",
        Rule::Int {
            min: 1,
            max: audit::MAX_LIMIT,
        },
    ),
    (
        "memory_create",
        "Idempotency-Key",
        Rule::Ascii {
            max: idempotency::MAX_KEY_LEN,
        },
    ),
    (
        "key_create",
        "Idempotency-Key",
        Rule::Ascii {
            max: idempotency::MAX_KEY_LEN,
        },
    ),
    (
        "key_rotate",
        "Idempotency-Key",
        Rule::Ascii {
            max: idempotency::MAX_KEY_LEN,
        },
    ),
    (
        "connect_start",
        "Idempotency-Key",
        Rule::Ascii {
            max: idempotency::MAX_KEY_LEN,
        },
    ),
    (
        "user_set_password",
        "Idempotency-Key",
        Rule::Ascii {
            max: idempotency::MAX_KEY_LEN,
        },
    ),
];

/// Where the rule of an MCP tool argument is stated for REST.
#[derive(Debug, Clone, Copy)]
pub enum ToolArg {
    /// A parameter of a REST operation, in [`PARAMS`].
    Param {
        operation: &'static str,
        name: &'static str,
    },
    /// A rule whose REST counterpart has another shape.
    Rule(Rule),
}

/// The REST request body whose fields an MCP tool takes as its arguments,
/// with the same names and so the same [`FIELDS`] rules. (Tool names are the
/// operation ids of the matching REST routes.)
pub const TOOL_BODIES: &[(&str, &str)] = &[
    ("memory_create", "CreateMemoryRequest"),
    ("memory_update", "UpdateMemoryRequest"),
    ("memory_search", "SearchRequest"),
];

/// `(tool, argument, rule)` for tool arguments outside a REST body.
pub const TOOL_ARGS: &[(&str, &str, ToolArg)] = &[
    (
        "memory_create",
        "idempotency_key",
        ToolArg::Param {
            operation: "memory_create",
            name: "Idempotency-Key",
        },
    ),
    (
        "memory_list",
        "limit",
        ToolArg::Param {
            operation: "memory_list",
            name: "limit",
        },
    ),
    // REST takes the listing's tags as one comma-separated parameter; the
    // tool takes a list, held to the rule of every tag list.
    ("memory_list", "tags", ToolArg::Rule(TAGS)),
];

/// The rules of `tool`'s arguments: from [`TOOL_BODIES`] and [`TOOL_ARGS`].
fn tool_rules(tool: &str) -> Vec<(&'static str, Option<Rule>)> {
    let body = TOOL_BODIES
        .iter()
        .filter(|(t, _)| *t == tool)
        .flat_map(|(_, schema)| FIELDS.iter().filter(move |(s, _, _)| s == schema))
        .map(|(_, property, rule)| (*property, Some(*rule)));
    let args = TOOL_ARGS
        .iter()
        .filter(|(t, _, _)| *t == tool)
        .map(|(_, argument, source)| {
            let rule = match source {
                ToolArg::Param { operation, name } => PARAMS
                    .iter()
                    .find(|(o, p, _)| o == operation && p == name)
                    .map(|(_, _, rule)| *rule),
                ToolArg::Rule(rule) => Some(*rule),
            };
            (*argument, rule)
        });
    body.chain(args).collect()
}

/// Write the rules of `tool`'s arguments into its input schema (JSON
/// Schema, as the MCP tool list carries it). Returns the entries that
/// matched no property, or named no rule (empty for the tools as they are).
pub fn annotate_tool(
    tool: &str,
    schema: &mut serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut missing = Vec::new();
    for (argument, rule) in tool_rules(tool) {
        let target = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(argument))
            .and_then(serde_json::Value::as_object_mut);
        match (target, rule) {
            (Some(target), Some(rule)) => {
                for (k, v) in rule.keywords() {
                    match serde_json::to_value(v) {
                        Ok(v) => {
                            target.insert(k.to_owned(), v);
                        }
                        Err(_) => missing.push(format!("{tool}.{argument}: {k}")),
                    }
                }
            }
            _ => missing.push(format!("{tool}.{argument}")),
        }
    }
    missing
}

fn set(target: &mut Mapping, rule: Rule) {
    for (k, v) in rule.keywords() {
        target.insert(Value::from(k), v);
    }
}

/// What [`annotate`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keywords {
    /// The rules and `additionalProperties: false`: the spec as served.
    All,
    /// Only `additionalProperties: false`: what the Rust client is generated
    /// from, so its request types stay plain strings, integers and lists and
    /// the server's 400 (naming the field) is the one place a limit is
    /// reported.
    Shape,
}

/// Write the tables' rules and `additionalProperties: false` into `spec`.
/// Returns the entries that matched nothing (empty for the API as it is).
pub fn annotate(spec: &mut Value, keywords: Keywords) -> Vec<String> {
    let rules = keywords == Keywords::All;
    let mut missing = Vec::new();
    let mut request_bodies: Vec<String> = Vec::new();
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_mapping_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_mapping_mut() else {
                continue;
            };
            for op in item.values_mut() {
                let Some(op) = op.as_mapping_mut() else {
                    continue;
                };
                // OpenAPI 3.0 (§4.7.30): only OAuth and OpenID Connect
                // requirements list scopes; the others' arrays are empty.
                // A key carries the same scopes as a token, as the API key
                // and Bearer scheme descriptions say.
                if let Some(security) = op.get_mut("security").and_then(Value::as_sequence_mut) {
                    for requirement in security.iter_mut().filter_map(Value::as_mapping_mut) {
                        for (scheme, scopes) in requirement.iter_mut() {
                            if scheme.as_str() != Some("OAuth") {
                                *scopes = Value::Sequence(Vec::new());
                            }
                        }
                    }
                }
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(content) = op
                    .get("requestBody")
                    .and_then(|b| b.get("content"))
                    .and_then(Value::as_mapping)
                {
                    for media in content.values() {
                        if let Some(r) = media
                            .get("schema")
                            .and_then(|s| s.get("$ref"))
                            .and_then(Value::as_str)
                        {
                            request_bodies.push(r.rsplit('/').next().unwrap_or(r).to_owned());
                        }
                    }
                }
                let Some(params) = op.get_mut("parameters").and_then(Value::as_sequence_mut) else {
                    continue;
                };
                for param in params {
                    let name = param.get("name").and_then(Value::as_str).unwrap_or("");
                    if let Some((_, _, rule)) =
                        PARAMS.iter().find(|(o, p, _)| *o == id && *p == name)
                    {
                        if let Some(schema) = param
                            .get_mut("schema")
                            .and_then(Value::as_mapping_mut)
                            .filter(|_| rules)
                        {
                            set(schema, *rule);
                        }
                    }
                }
            }
        }
    }
    for (op, param, _) in PARAMS {
        if !has_param(spec, op, param) {
            missing.push(format!("parameter {param} of {op}"));
        }
    }
    let Some(schemas) = spec
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_mapping_mut)
    else {
        missing.push("components.schemas".into());
        return missing;
    };
    for (schema, property, rule) in FIELDS {
        match schemas
            .get_mut(*schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(*property))
            .and_then(Value::as_mapping_mut)
        {
            Some(target) if rules => set(target, *rule),
            Some(_) => {}
            None => missing.push(format!("{schema}.{property}")),
        }
    }
    for name in request_bodies {
        if let Some(s) = schemas
            .get_mut(name.as_str())
            .and_then(Value::as_mapping_mut)
        {
            s.insert("additionalProperties".into(), false.into());
        }
    }
    missing
}

fn has_param(spec: &Value, op_id: &str, param: &str) -> bool {
    spec.get("paths")
        .and_then(Value::as_mapping)
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_mapping)
        .flat_map(|item| item.values())
        .filter(|op| op.get("operationId").and_then(Value::as_str) == Some(op_id))
        .filter_map(|op| op.get("parameters").and_then(Value::as_sequence))
        .flatten()
        .any(|p| p.get("name").and_then(Value::as_str) == Some(param))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_applies() {
        let mut spec: Value = serde_yaml::from_str(&super::super::api_service().spec_yaml())
            .expect("the spec parses");
        assert_eq!(annotate(&mut spec, Keywords::All), Vec::<String>::new());
    }

    fn pattern(rule: Rule) -> regex::Regex {
        let p = rule
            .keywords()
            .into_iter()
            .find(|(k, _)| *k == "pattern")
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
            .expect("a pattern");
        regex::Regex::new(&p).expect("the pattern compiles")
    }

    /// The schema patterns accept what the services accept and refuse what
    /// they refuse, on the cases that tell them apart.
    #[test]
    fn patterns_match_the_service_rules() {
        let text = pattern(NAME);
        for value in [
            "ci", "  ci  ", "a b", "   ", "", "a\u{0}b", "a\u{7}b", "a\u{85}b", "\u{a0}", "é",
        ] {
            assert_eq!(
                text.is_match(value),
                validate::text("f", value, 10).is_ok(),
                "{value:?}"
            );
        }
        let tag = {
            let items = TAGS
                .keywords()
                .into_iter()
                .find(|(k, _)| *k == "items")
                .unwrap()
                .1;
            regex::Regex::new(items.get("pattern").and_then(Value::as_str).unwrap()).unwrap()
        };
        for value in ["ops", " ops ", "a,b", ",", " ", "a\u{1}"] {
            assert_eq!(
                tag.is_match(value),
                memories::tags("tags", &[value.to_owned()]).is_ok(),
                "{value:?}"
            );
        }
        let key = pattern(Rule::Ascii { max: 255 });
        for value in ["abc-123", "with space", "é", "a\tb", ""] {
            assert_eq!(
                key.is_match(value),
                idempotency::validate_key(value).is_ok(),
                "{value:?}"
            );
        }
    }
}
