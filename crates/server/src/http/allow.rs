//! `405 Method Not Allowed` always carries `Allow` (RFC 9110 §15.5.6).
//!
//! Pages and protocol endpoints are routed with [`Methods`] (built by
//! [`get`] and [`post`], in place of poem's), which knows its methods and
//! answers a wrong one itself. The REST operations are routed by
//! poem-openapi; their methods come from the spec ([`for_api_path`]), so the
//! header cannot drift from `openapi.yaml`.

use std::sync::LazyLock;

use poem::{
    http::{header, HeaderValue, Method, StatusCode},
    Endpoint, IntoEndpoint, Request, Response, RouteMethod,
};

/// A route's endpoints by method, answering any other method with 405 and
/// `Allow`. `HEAD` is served wherever `GET` is.
pub struct Methods {
    inner: RouteMethod,
    allowed: Vec<Method>,
}

/// A route answering `GET` (and `HEAD`) with `ep`.
pub fn get<E>(ep: E) -> Methods
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    Methods::default().get(ep)
}

/// A route answering `POST` with `ep`.
pub fn post<E>(ep: E) -> Methods
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    Methods::default().post(ep)
}

impl Default for Methods {
    fn default() -> Self {
        Self {
            inner: RouteMethod::new(),
            allowed: Vec::new(),
        }
    }
}

impl Methods {
    #[must_use]
    pub fn method<E>(mut self, method: Method, ep: E) -> Self
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.allowed.push(method.clone());
        self.inner = self.inner.method(method, ep);
        self
    }

    #[must_use]
    pub fn get<E>(self, ep: E) -> Self
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.method(Method::GET, ep)
    }

    #[must_use]
    pub fn post<E>(self, ep: E) -> Self
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.method(Method::POST, ep)
    }

    #[must_use]
    pub fn options<E>(self, ep: E) -> Self
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.method(Method::OPTIONS, ep)
    }

    fn serves(&self, method: &Method) -> bool {
        self.allowed.contains(method)
            || (method == Method::HEAD && self.allowed.contains(&Method::GET))
    }
}

impl Endpoint for Methods {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if self.serves(req.method()) {
            return self.inner.call(req).await;
        }
        Ok(not_allowed(&header_value(&self.allowed)))
    }
}

/// `GET, HEAD, POST`: the methods in order, `HEAD` after `GET`.
fn header_value(methods: &[Method]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for m in methods {
        names.push(m.as_str());
        if m == Method::GET && !methods.contains(&Method::HEAD) {
            names.push("HEAD");
        }
    }
    names.join(", ")
}

/// A bare 405 with `Allow`; the envelope gives it the JSON body or page.
fn not_allowed(allow: &str) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::METHOD_NOT_ALLOWED)
        .finish();
    if let Ok(v) = HeaderValue::from_str(allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// The operations of `openapi.yaml`: path templates split into segments
/// (`None` for a `{parameter}`), with their methods.
struct ApiPaths(Vec<(Vec<Option<String>>, Vec<Method>)>);

static API_PATHS: LazyLock<ApiPaths> = LazyLock::new(|| {
    let spec: serde_json::Value =
        serde_json::from_str(&crate::api::api_service().spec()).unwrap_or_default();
    let paths = spec["paths"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .map(|(template, ops)| {
                    let segments = template
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                        .collect();
                    let methods = ops
                        .as_object()
                        .map(|ops| {
                            ops.keys()
                                .filter_map(|m| m.to_ascii_uppercase().parse().ok())
                                .collect()
                        })
                        .unwrap_or_default();
                    (segments, methods)
                })
                .collect()
        })
        .unwrap_or_default();
    ApiPaths(paths)
});

/// The `Allow` value of the REST operation at `path`, if it is one: the
/// template with the most literal segments wins, as in the router.
pub fn for_api_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    API_PATHS
        .0
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| match t {
                    Some(literal) => literal == s,
                    None => !s.is_empty(),
                })
        })
        .max_by_key(|(template, _)| template.iter().filter(|t| t.is_some()).count())
        .map(|(_, methods)| header_value(methods))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_come_from_the_spec() {
        assert_eq!(
            for_api_path("/api/v1/memory").as_deref(),
            Some("GET, HEAD, POST")
        );
        let one = for_api_path("/api/v1/memory/0190aaaa").unwrap();
        assert!(one.contains("GET") && one.contains("DELETE"), "{one}");
        assert_eq!(for_api_path("/nowhere"), None);
    }

    #[test]
    fn head_follows_get() {
        assert_eq!(
            header_value(&[Method::GET, Method::POST]),
            "GET, HEAD, POST"
        );
        assert_eq!(header_value(&[Method::POST]), "POST");
    }
}
