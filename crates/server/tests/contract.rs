//! The API surface as a reviewed artifact: the table of operations and the
//! error bodies are insta snapshots, and every operation that is not public
//! must declare a security requirement.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a failed unwrap is a failed test, with its message"
)]

use std::collections::BTreeSet;

use mcpgate_server::{api::error::ApiError, error::Error, scope::Scope};
use poem::IntoResponse;

fn committed_spec() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("openapi.yaml exists"))
        .expect("openapi.yaml parses")
}

/// Operations that are public by design.
const PUBLIC: &[&str] = &["user_register", "health_live", "health_ready"];

struct Operation {
    id: String,
    method: String,
    path: String,
    tags: Vec<String>,
    security: Vec<String>,
}

fn operations(spec: &serde_yaml::Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let security = op["security"]
                .as_sequence()
                .map(|reqs| {
                    reqs.iter()
                        .flat_map(|r| r.as_mapping().into_iter().flat_map(|m| m.keys()))
                        .map(|k| k.as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            ops.push(Operation {
                id: op["operationId"].as_str().unwrap_or("<none>").to_owned(),
                method: method.as_str().unwrap_or_default().to_uppercase(),
                path: path.as_str().unwrap_or_default().to_owned(),
                tags: op["tags"]
                    .as_sequence()
                    .map(|t| {
                        t.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                security,
            });
        }
    }
    ops.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    ops
}

#[test]
fn operation_table() {
    let table: Vec<String> = operations(&committed_spec())
        .iter()
        .map(|op| {
            let security = if op.security.is_empty() {
                "public".to_owned()
            } else {
                op.security.join(" | ")
            };
            format!(
                "{:<14} {:<6} {:<32} {:<8} {}",
                op.id,
                op.method,
                op.path,
                op.tags.join(","),
                security
            )
        })
        .collect();
    insta::assert_snapshot!(table.join("\n"));
}

#[test]
fn every_non_public_operation_declares_security() {
    let ops = operations(&committed_spec());
    let mut ids = BTreeSet::new();
    for op in &ops {
        assert!(
            ids.insert(op.id.clone()),
            "duplicate operation id {}",
            op.id
        );
        assert_eq!(op.tags.len(), 1, "{} must have exactly one tag", op.id);
        assert!(
            op.id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{} is not snake_case",
            op.id
        );
        if PUBLIC.contains(&op.id.as_str()) {
            assert!(op.security.is_empty(), "{} is public by design", op.id);
        } else {
            assert!(
                !op.security.is_empty(),
                "{} {} ({}) declares no security requirement",
                op.method,
                op.path,
                op.id
            );
        }
    }
    for public in PUBLIC {
        assert!(
            ids.contains(*public),
            "public operation {public} is missing"
        );
    }
}

#[test]
fn every_error_response_uses_the_one_error_schema() {
    let spec = committed_spec();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            for (status, resp) in op["responses"].as_mapping().unwrap() {
                let status: u16 = status.as_str().unwrap().parse().unwrap();
                if status < 400 {
                    continue;
                }
                let schema = &resp["content"]["application/json; charset=utf-8"]["schema"]["$ref"];
                assert_eq!(
                    schema.as_str(),
                    Some("#/components/schemas/Error"),
                    "{method:?} {path:?} {status}"
                );
            }
        }
    }
}

async fn render(e: ApiError) -> String {
    let resp = e.into_response();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| format!("\nWWW-Authenticate: {}", v.to_str().unwrap()))
        .unwrap_or_default();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| format!("\nRetry-After: {}", v.to_str().unwrap()))
        .unwrap_or_default();
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().into_vec().await.unwrap()).unwrap();
    format!(
        "{status}{challenge}{retry}\n{}",
        serde_json::to_string_pretty(&body).unwrap()
    )
}

#[tokio::test]
async fn sample_error_bodies() {
    use mcpgate_server::error::CredentialProblem::*;
    let samples: Vec<(&str, Error)> = vec![
        ("validation", Error::validation("name", "must not be empty")),
        ("missing credentials", Error::MissingCredentials),
        ("malformed key", Error::InvalidCredentials(Malformed)),
        ("unknown key", Error::InvalidCredentials(Unknown)),
        ("revoked key", Error::InvalidCredentials(Revoked)),
        ("expired key", Error::InvalidCredentials(Expired)),
        ("wrong scheme", Error::InvalidCredentials(UnsupportedScheme)),
        (
            "insufficient scope",
            Error::InsufficientScope {
                required: vec![Scope::KeysWrite],
            },
        ),
        ("not found", Error::NotFound("key")),
        (
            "conflict",
            Error::Conflict {
                code: "email_taken",
                message: "An account with this email already exists.".into(),
            },
        ),
        ("registration closed", Error::RegistrationClosed),
        (
            "rate limited",
            Error::RateLimited {
                kind: "client IP",
                retry_after_secs: 6,
            },
        ),
        (
            "version mismatch",
            Error::PreconditionFailed(
                "The memory changed: it is at version 4 or later. Read it again and retry.".into(),
            ),
        ),
        ("too large", Error::PayloadTooLarge { limit: 1024 }),
        (
            "database unavailable",
            Error::Database(sea_orm::DbErr::ConnectionAcquire(
                sea_orm::error::ConnAcquireErr::Timeout,
            )),
        ),
        ("search timeout", Error::SearchTimeout { budget_ms: 2000 }),
        (
            "internal",
            Error::caused_by("reading a row", "secret detail that must not leak"),
        ),
    ];
    let mut out = String::new();
    for (name, e) in samples {
        let rendered =
            mcpgate_server::context::scope("req_SNAPSHOT".into(), async { render(e.into()).await })
                .await;
        assert!(
            !rendered.contains("secret detail"),
            "internal detail leaked: {rendered}"
        );
        out.push_str(&format!("## {name}\n{rendered}\n\n"));
    }
    insta::assert_snapshot!(out);
}
