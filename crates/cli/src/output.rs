//! How `mcpg` prints: the API's JSON unchanged with `--json`, else tables and
//! lines rendered from the typed responses.

use chrono::{DateTime, Utc};
use mcpgate_client::types;

use crate::args::Cli;

/// Print `value` as JSON (the API's, unchanged), or as the table/lines
/// `human` renders from it.
pub fn output<T: serde::Serialize>(cli: &Cli, value: &T, human: impl FnOnce(&T) -> String) {
    if cli.json {
        let v = serde_json::to_value(value).unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let text = human(value);
        if !text.is_empty() {
            println!("{text}");
        }
    }
}

/// A time as the API writes it (RFC 3339 in UTC, `Z`).
pub fn when(t: &DateTime<Utc>) -> String {
    format!("{t:?}")
}

/// An absent value as `-`.
pub fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// A list as comma-separated names.
pub fn commas<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// `mcpg whoami`.
pub fn show_me(server: &str, me: &types::Me) -> String {
    format!(
        "server:     {server}\nuser:       {}\nemail:      {}\ncredential: {} {}\nscopes:     {}",
        me.user_id,
        or_dash(me.email.clone()),
        me.credential.kind,
        me.credential.id,
        me.credential.scopes.join(" ")
    )
}

/// `mcpg keys list`.
pub fn show_keys(list: &types::ApiKeyList) -> String {
    let rows = list
        .keys
        .iter()
        .map(|k| {
            vec![
                k.key_id.clone(),
                k.name.clone(),
                commas(&k.scopes),
                or_dash(k.last_used_at.as_ref().map(when)),
                or_dash(k.revoked_at.as_ref().map(when)),
            ]
        })
        .collect();
    table(&["id", "name", "scopes", "last used", "revoked"], rows)
}

/// A new key, shown once.
pub fn show_new_key(api_key: &str) -> String {
    format!("{api_key}\n(store it now: it is shown only once)")
}

pub fn memory_rows(memories: &[types::Memory]) -> Vec<Vec<String>> {
    memories
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.memory_type.to_string(),
                m.title.clone(),
                commas(&m.tags),
            ]
        })
        .collect()
}

/// `mcpg memory get`.
pub fn show_memory(m: &types::Memory) -> String {
    format!(
        "# {} ({}, v{})\n{}",
        m.title, m.memory_type, m.version, m.content
    )
}

/// `mcpg memory search`: the score as the API gives it (0-100, one decimal).
pub fn show_search(found: &types::SearchResponse) -> String {
    let rows = found
        .results
        .iter()
        .map(|r| {
            vec![
                r.memory.id.clone(),
                format!("{:.1}", r.score),
                r.memory.title.clone(),
            ]
        })
        .collect();
    table(&["id", "score", "title"], rows)
}

/// `mcpg memory stats`.
pub fn show_stats(st: &types::MemoryStats) -> String {
    let by_type: std::collections::BTreeMap<_, _> = st.by_type.iter().collect();
    format!(
        "memories: {}\nbytes:    {}\nby type:  {}",
        st.total_memories,
        st.total_bytes,
        serde_json::to_string(&by_type).unwrap_or_default()
    )
}

/// `mcpg connect list`.
pub fn show_providers(list: &types::ProviderList) -> String {
    let rows = list
        .providers
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.display_name.clone(),
                p.available.to_string(),
                or_dash(p.status.map(|s| s.to_string())),
            ]
        })
        .collect();
    table(&["provider", "name", "available", "status"], rows)
}

/// `mcpg connect status`.
pub fn show_connection(provider: &str, c: &types::ConnectionInfo) -> String {
    format!(
        "{provider}: {} (account {}, expires {})",
        c.status,
        or_dash(c.external_account_id.clone()),
        or_dash(c.expires_at.as_ref().map(when))
    )
}

/// `mcpg apps list`.
pub fn show_authorizations(list: &types::AuthorizationList) -> String {
    let rows = list
        .authorizations
        .iter()
        .map(|a| {
            vec![
                a.client_id.clone(),
                a.client_name.clone(),
                commas(&a.scopes),
                when(&a.last_used_at),
            ]
        })
        .collect();
    table(&["client id", "name", "scopes", "last used"], rows)
}

/// `mcpg clients list`.
pub fn show_clients(list: &types::OwnedClientList) -> String {
    let rows = list
        .clients
        .iter()
        .map(|c| {
            vec![
                c.client_id.clone(),
                c.client_name.clone(),
                commas(&c.scopes),
                or_dash(c.registered_with_key.clone()),
                or_dash(c.last_used_at.as_ref().map(when)),
            ]
        })
        .collect();
    table(&["client id", "name", "scopes", "key", "last used"], rows)
}

/// `mcpg clients get`.
pub fn show_client(c: &types::OwnedClient) -> String {
    table(
        &["client id", "name", "scopes", "grants", "created"],
        vec![vec![
            c.client_id.clone(),
            c.client_name.clone(),
            commas(&c.scopes),
            commas(&c.grant_types),
            when(&c.created_at),
        ]],
    )
}

/// Aligned columns.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_uppercase()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A response type from the JSON the server sends.
    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn check(rendered: String, expected: &str) {
        assert_eq!(rendered, expected);
    }

    const AT: &str = "2026-11-22T10:00:00.123456Z";

    #[test]
    fn times_print_as_the_api_writes_them() {
        for raw in [
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.123Z",
            AT,
            "2026-11-22T10:00:00.000000001Z",
        ] {
            let t: DateTime<Utc> = from(json!(raw));
            assert_eq!(when(&t), raw);
            assert_eq!(serde_json::to_value(t).unwrap(), json!(raw));
        }
    }

    #[test]
    fn account_and_keys() {
        let me = json!({
            "user_id": "u1", "created_at": AT,
            "credential": {"kind": "api_key", "id": "k1", "scopes": ["memories:read", "keys:read"]},
        });
        check(
            show_me("http://127.0.0.1:8080", &from(me)),
            "server:     http://127.0.0.1:8080\nuser:       u1\nemail:      -\n\
             credential: api_key k1\nscopes:     memories:read keys:read",
        );
        let keys = json!({"keys": [
            {"key_id": "k1", "name": "laptop", "prefix": "mcpg_k1", "scopes": ["memories:read", "keys:read"],
             "created_at": AT, "last_used_at": AT, "usage_count": 3},
            {"key_id": "k2", "name": "ci", "prefix": "mcpg_k2", "scopes": [],
             "created_at": AT, "revoked_at": "2026-11-23T08:00:00Z", "usage_count": 0},
        ]});
        check(
            show_keys(&from(keys)),
            "ID  NAME    SCOPES                   LAST USED                    REVOKED\n\
             k1  laptop  memories:read,keys:read  2026-11-22T10:00:00.123456Z  -\n\
             k2  ci                               -                            2026-11-23T08:00:00Z",
        );
        check(
            show_new_key("mcpg_x"),
            "mcpg_x\n(store it now: it is shown only once)",
        );
    }

    fn memory(id: &str, title: &str) -> serde_json::Value {
        json!({
            "id": id, "title": title, "content": "body\n", "memory_type": "project",
            "tags": ["ops", "release"], "metadata": {}, "version": 2,
            "created_at": AT, "updated_at": AT,
        })
    }

    #[test]
    fn memories() {
        let m = memory("m1", "Release checklist");
        check(
            show_memory(&from(m.clone())),
            "# Release checklist (project, v2)\nbody\n",
        );
        let page: types::MemoryPage = from(json!({"memories": [m], "total": 1}));
        check(
            table(
                &["id", "type", "title", "tags"],
                memory_rows(&page.memories),
            ),
            "ID  TYPE     TITLE              TAGS\nm1  project  Release checklist  ops,release",
        );
        let found = json!({"results": [
            {"memory": memory("m1", "Best"), "score": 100.0, "snippet": ""},
            {"memory": memory("m2", "Next"), "score": 71.1, "snippet": ""},
            {"memory": memory("m3", "Far"), "score": 0.0, "snippet": ""},
        ], "total_results": 3, "took_ms": 1.5});
        check(
            show_search(&from(found)),
            "ID  SCORE  TITLE\nm1  100.0  Best\nm2  71.1   Next\nm3  0.0    Far",
        );
        let stats = json!({
            "total_memories": 3, "total_bytes": 120, "by_type": {"project": 1, "context": 2},
            "top_tags": [], "oldest_at": AT, "newest_at": AT,
        });
        check(
            show_stats(&from(stats)),
            "memories: 3\nbytes:    120\nby type:  {\"context\":2,\"project\":1}",
        );
    }

    #[test]
    fn connections_apps_and_clients() {
        let providers = json!({"providers": [
            {"name": "github", "display_name": "GitHub", "available": true, "connected": true,
             "status": "refresh_failed"},
            {"name": "google", "display_name": "Google", "available": false, "connected": false},
        ]});
        check(
            show_providers(&from(providers)),
            "PROVIDER  NAME    AVAILABLE  STATUS\ngithub    GitHub  true       refresh_failed\n\
             google    Google  false      -",
        );
        let c = json!({
            "provider": "github", "connected": true, "status": "connected", "scopes": [],
            "connected_at": AT,
        });
        check(
            show_connection("github", &from(c)),
            "github: connected (account -, expires -)",
        );
        let apps = json!({"authorizations": [
            {"client_id": "c1", "client_name": "Claude", "scopes": ["memories:read"], "resources": [],
             "authorized_at": AT, "last_used_at": AT, "verified": true},
        ]});
        check(
            show_authorizations(&from(apps)),
            "CLIENT ID  NAME    SCOPES         LAST USED\nc1         Claude  memories:read  2026-11-22T10:00:00.123456Z",
        );
        let client = json!({
            "client_id": "mcpg_ci_1", "client_name": "bot", "scopes": ["memories:read"],
            "grant_types": ["client_credentials"], "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_post", "registered_with_key": "k1",
            "created_at": AT,
        });
        check(
            show_client(&from(client.clone())),
            "CLIENT ID  NAME  SCOPES         GRANTS              CREATED\n\
             mcpg_ci_1  bot   memories:read  client_credentials  2026-11-22T10:00:00.123456Z",
        );
        check(
            show_clients(&from(json!({"clients": [client]}))),
            "CLIENT ID  NAME  SCOPES         KEY  LAST USED\nmcpg_ci_1  bot   memories:read  k1   -",
        );
    }
}
