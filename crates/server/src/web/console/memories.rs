//! `/account/memories`: list with type and tag filters and paging, search
//! with escaped snippets, create, view, edit, delete.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path},
    Request, Response,
};
use uuid::Uuid;

use crate::{
    error::Error,
    service::memories::{self, Memory, MEMORY_TYPES},
    state::AppState,
    web::{
        forms::{self, error_page, when, Console, ConsoleForm, FormState, Problem},
        params::Params,
        see_other,
        templates::{render, Nav},
    },
};

const FIELDS: &[&str] = &["title", "content", "memory_type", "tags"];
const NOTICES: &[(&str, &str)] = &[("deleted", "The memory was deleted.")];
const MEMORY_NOTICES: &[(&str, &str)] =
    &[("created", "Saved."), ("saved", "Your changes were saved.")];
/// Memories per page of the list.
const PAGE_SIZE: i64 = 25;

struct Row {
    id: Uuid,
    title: String,
    memory_type: String,
    tags: String,
    updated: String,
    /// Search only: the matching passage, as (text, highlighted) runs.
    snippet: Vec<(String, bool)>,
}

/// The values of the memory form.
#[derive(Default)]
struct Values {
    title: String,
    content: String,
    memory_type: String,
    tags: String,
}

#[derive(Template)]
#[template(path = "memories.html")]
struct MemoriesPage {
    nav: Nav,
    q: String,
    type_filter: String,
    tag_filter: String,
    searching: bool,
    rows: Vec<Row>,
    total: u64,
    next: Option<String>,
    search_error: Option<String>,
    types: &'static [&'static str],
    form: FormState,
    values: Values,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "memory.html")]
struct MemoryPage {
    nav: Nav,
    id: Uuid,
    version: i64,
    created: String,
    updated: String,
    shown_title: String,
    shown_content: String,
    types: &'static [&'static str],
    form: FormState,
    values: Values,
    notice: Option<&'static str>,
}

/// Split a search snippet into runs; the store marks matches with
/// `<mark>`…`</mark>`. Every run is escaped by the template.
fn snippet_runs(snippet: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = snippet;
    while let Some(start) = rest.find("<mark>") {
        if start > 0 {
            out.push((rest[..start].to_owned(), false));
        }
        let after = &rest[start + 6..];
        match after.find("</mark>") {
            Some(end) => {
                out.push((after[..end].to_owned(), true));
                rest = &after[end + 7..];
            }
            None => {
                out.push((after.to_owned(), true));
                rest = "";
            }
        }
    }
    if !rest.is_empty() {
        out.push((rest.to_owned(), false));
    }
    out
}

fn row(m: Memory, snippet: Vec<(String, bool)>) -> Row {
    Row {
        id: m.id,
        title: m.title,
        memory_type: m.memory_type.as_str().to_owned(),
        tags: m.tags.join(", "),
        updated: when(m.updated_at),
        snippet,
    }
}

fn tag_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn values_of(form: &Params) -> Values {
    Values {
        title: forms::field(form, "title").chars().take(300).collect(),
        content: forms::field(form, "content")
            .chars()
            .take(100_000)
            .collect(),
        memory_type: forms::field(form, "memory_type").chars().take(20).collect(),
        tags: forms::field(form, "tags").chars().take(1_200).collect(),
    }
}

/// The list or search page for the filters in `q`.
async fn listing(
    state: &AppState,
    c: &Console,
    q: &Params,
    form: FormState,
    values: Values,
    notice: Option<&'static str>,
) -> Response {
    let p = c.principal();
    let query = forms::field(q, "q")
        .trim()
        .chars()
        .take(1_000)
        .collect::<String>();
    let type_filter = forms::field(q, "type");
    let tag_filter = forms::field(q, "tag").trim().to_owned();
    let types: Vec<String> = (!type_filter.is_empty())
        .then(|| type_filter.clone())
        .into_iter()
        .collect();
    let tags: Vec<String> = (!tag_filter.is_empty())
        .then(|| tag_filter.clone())
        .into_iter()
        .collect();
    let mut search_error = None;
    let mut status = form.status();
    let (rows, total, next) = if query.is_empty() {
        let input = memories::ListInput {
            memory_type: types.first().cloned(),
            tags,
            created_after: None,
            created_before: None,
            limit: Some(PAGE_SIZE),
            cursor: q.all("cursor").into_iter().next().filter(|c| !c.is_empty()),
        };
        match memories::list(state, &p, input).await {
            Ok(found) => {
                let next = found.next_cursor.map(|cur| {
                    let mut s = url::form_urlencoded::Serializer::new(String::new());
                    if !type_filter.is_empty() {
                        s.append_pair("type", &type_filter);
                    }
                    if !tag_filter.is_empty() {
                        s.append_pair("tag", &tag_filter);
                    }
                    s.append_pair("cursor", &cur);
                    format!("/account/memories?{}", s.finish())
                });
                let rows = found.memories.into_iter().map(|m| row(m, vec![])).collect();
                (rows, found.total, next)
            }
            Err(e) => match forms::problem(e) {
                Ok(problem) => {
                    status = problem.status;
                    search_error = Some(problem.message);
                    (vec![], 0, None)
                }
                Err(resp) => return resp,
            },
        }
    } else {
        let input = memories::SearchInput {
            query: query.clone(),
            memory_types: types,
            tags,
            limit: Some(PAGE_SIZE),
        };
        match memories::search(state, &p, input).await {
            Ok(found) => {
                let rows = found
                    .results
                    .into_iter()
                    .map(|h| {
                        let runs = snippet_runs(&h.snippet);
                        row(h.memory, runs)
                    })
                    .collect();
                (rows, found.total_results, None)
            }
            Err(e) => match forms::problem(e) {
                Ok(problem) => {
                    status = problem.status;
                    search_error = Some(problem.message);
                    (vec![], 0, None)
                }
                Err(resp) => return resp,
            },
        }
    };
    let tpl = MemoriesPage {
        nav: c.nav("memories"),
        searching: !query.is_empty(),
        q: query,
        type_filter,
        tag_filter,
        rows,
        total,
        next,
        search_error,
        types: MEMORY_TYPES.as_slice(),
        form,
        values,
        notice,
    };
    c.finish(state, render(&tpl, status))
}

#[handler]
pub async fn page(c: Console, req: &Request, state: Data<&AppState>) -> Response {
    let q = match forms::query(req) {
        Ok(q) => q,
        Err(page) => return page,
    };
    let values = Values {
        memory_type: "context".into(),
        ..Values::default()
    };
    listing(
        &state,
        &c,
        &q,
        FormState::clean(FIELDS, false),
        values,
        super::notice(req, NOTICES),
    )
    .await
}

#[handler]
pub async fn create(ConsoleForm(c, form): ConsoleForm, state: Data<&AppState>) -> Response {
    let values = values_of(&form);
    let input = memories::CreateInput {
        title: values.title.clone(),
        content: values.content.clone(),
        memory_type: Some(values.memory_type.clone()).filter(|t| !t.is_empty()),
        tags: Some(tag_list(&values.tags)),
        metadata: None,
    };
    match memories::create(&state, &c.principal(), input).await {
        Ok(m) => see_other(&format!("/account/memories/{}?done=created", m.id)),
        Err(e) => match forms::problem(e) {
            Ok(p) => {
                let empty = Params::empty();
                listing(&state, &c, &empty, FormState::with(p, FIELDS), values, None).await
            }
            Err(resp) => resp,
        },
    }
}

fn parse_id(id: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(id).map_err(|_| error_page(Error::NotFound("memory")))
}

async fn memory_page(
    state: &AppState,
    c: &Console,
    m: Memory,
    form: FormState,
    values: Option<Values>,
    notice: Option<&'static str>,
) -> Response {
    let status = form.status();
    let values = values.unwrap_or_else(|| Values {
        title: m.title.clone(),
        content: m.content.clone(),
        memory_type: m.memory_type.as_str().to_owned(),
        tags: m.tags.join(", "),
    });
    let tpl = MemoryPage {
        nav: c.nav("memories"),
        id: m.id,
        version: m.version,
        created: when(m.created_at),
        updated: when(m.updated_at),
        shown_title: m.title,
        shown_content: m.content,
        types: MEMORY_TYPES.as_slice(),
        form,
        values,
        notice,
    };
    c.finish(state, render(&tpl, status))
}

#[handler]
pub async fn view(
    c: Console,
    req: &Request,
    Path(id): Path<String>,
    state: Data<&AppState>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    match memories::get(&state, &c.principal(), id).await {
        Ok(m) => {
            let notice = super::notice(req, MEMORY_NOTICES);
            memory_page(&state, &c, m, FormState::clean(FIELDS, false), None, notice).await
        }
        Err(e) => error_page(e),
    }
}

#[handler]
pub async fn update(
    ConsoleForm(c, form): ConsoleForm,
    Path(id): Path<String>,
    state: Data<&AppState>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let values = values_of(&form);
    let input = memories::UpdateInput {
        title: Some(values.title.clone()),
        content: Some(values.content.clone()),
        memory_type: Some(values.memory_type.clone()),
        tags: Some(tag_list(&values.tags)),
        metadata: None,
        expected_version: forms::field(&form, "version").parse().ok(),
    };
    let p = c.principal();
    match memories::update(&state, &p, id, input).await {
        Ok(m) => see_other(&format!("/account/memories/{}?done=saved", m.id)),
        Err(e) => {
            let problem = match e {
                Error::PreconditionFailed(_) => Problem::new(
                    None,
                    "This memory was changed elsewhere while you edited it. Below is the current version; your edits are kept in the form.",
                    StatusCode::PRECONDITION_FAILED,
                ),
                other => match forms::problem(other) {
                    Ok(p) => p,
                    Err(resp) => return resp,
                },
            };
            match memories::get(&state, &p, id).await {
                Ok(m) => {
                    memory_page(
                        &state,
                        &c,
                        m,
                        FormState::with(problem, FIELDS),
                        Some(values),
                        None,
                    )
                    .await
                }
                Err(e) => error_page(e),
            }
        }
    }
}

#[handler]
pub async fn delete(
    ConsoleForm(c, _): ConsoleForm,
    Path(id): Path<String>,

    state: Data<&AppState>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    match memories::delete(&state, &c.principal(), id).await {
        Ok(()) => see_other("/account/memories?done=deleted"),
        Err(e) => error_page(e),
    }
}

#[cfg(test)]
mod tests {
    use super::snippet_runs;

    #[test]
    fn snippets_split_into_marked_runs() {
        assert_eq!(
            snippet_runs("run <mark>migrations</mark> first <b>"),
            vec![
                ("run ".to_owned(), false),
                ("migrations".to_owned(), true),
                (" first <b>".to_owned(), false)
            ]
        );
        assert_eq!(snippet_runs("<mark>open"), vec![("open".to_owned(), true)]);
        assert!(snippet_runs("").is_empty());
    }
}
