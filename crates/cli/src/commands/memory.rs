//! `mcpg memory`: memories.

use std::io::Read;

use mcpgate_client::types;

use super::session;
use crate::{
    args::{Cli, MemoryAction},
    fail,
    output::{memory_rows, output, show_memory, show_search, show_stats, table},
    Failure,
};

pub fn read_content(
    arg: Option<String>,
    file: Option<std::path::PathBuf>,
) -> Result<String, Failure> {
    match (arg, file) {
        (Some(c), _) => Ok(c),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| fail(1, format!("reading {}: {e}", f.display()))),
        (None, None) => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| fail(1, format!("reading standard input: {e}")))?;
            Ok(buf)
        }
    }
}

pub async fn memory(cli: &Cli, action: &MemoryAction) -> Result<(), Failure> {
    let session = session(cli)?;
    match action {
        MemoryAction::Add {
            title,
            memory_type,
            tags,
            file,
            content,
        } => {
            let content = read_content(content.clone(), file.clone())?;
            let body = types::CreateMemoryRequest {
                title: title.clone(),
                content,
                memory_type: *memory_type,
                tags: tags.clone(),
                metadata: Default::default(),
            };
            let m = session
                .call(|c| {
                    let body = body.clone();
                    async move { c.memory_create().body(body).send().await }
                })
                .await?;
            output(cli, &m, |m| m.id.clone());
        }
        MemoryAction::Get { id } => {
            let m = session
                .call(|c| async move { c.memory_get().id(id.as_str()).send().await })
                .await?;
            output(cli, &m, show_memory);
        }
        MemoryAction::List {
            tags,
            memory_type,
            limit,
        } => {
            let tags = (!tags.is_empty()).then(|| tags.join(","));
            let page = session
                .call(|c| {
                    let tags = tags.clone();
                    async move {
                        let mut b = c.memory_list();
                        if let Some(t) = tags {
                            b = b.tags(t);
                        }
                        if let Some(t) = memory_type {
                            b = b.memory_type(*t);
                        }
                        if let Some(l) = limit {
                            b = b.limit(*l);
                        }
                        b.send().await
                    }
                })
                .await?;
            output(cli, &page, |p| {
                table(&["id", "type", "title", "tags"], memory_rows(&p.memories))
            });
        }
        MemoryAction::Search { query, limit } => {
            let body = types::SearchRequest {
                query: query.clone(),
                limit: *limit,
                memory_types: vec![],
                tags: vec![],
            };
            let found = session
                .call(|c| {
                    let body = body.clone();
                    async move { c.memory_search().body(body).send().await }
                })
                .await?;
            output(cli, &found, show_search);
        }
        MemoryAction::Edit {
            id,
            title,
            content,
            file,
            tags,
        } => {
            let content = match (content, file) {
                (None, None) => None,
                (c, f) => Some(read_content(c.clone(), f.clone())?),
            };
            let body = types::UpdateMemoryRequest {
                title: title.clone(),
                content,
                memory_type: None,
                tags: tags.clone(),
                metadata: Default::default(),
            };
            let m = session
                .call(|c| {
                    let body = body.clone();
                    async move { c.memory_update().id(id.as_str()).body(body).send().await }
                })
                .await?;
            output(cli, &m, |m| {
                format!("{} is now version {}", m.id, m.version)
            });
        }
        MemoryAction::Rm { id } => {
            session
                .call(|c| async move { c.memory_delete().id(id.as_str()).send().await })
                .await?;
            eprintln!("Deleted {id}.");
        }
        MemoryAction::Stats => {
            let st = session
                .call(|c| async move { c.memory_stats().send().await })
                .await?;
            output(cli, &st, show_stats);
        }
    }
    Ok(())
}
