//! `JsonBody<T>`: the request-body extractor of every operation.
//!
//! The schema in the spec comes from `T`'s poem-openapi `Object` derive; the
//! parsing is serde's, with `serde_path_to_error`, so every malformed body
//! gets a 400 that names the field at fault, unknown fields are refused, and
//! bodies over `max_body_bytes` get a 413 before they are read in full.
//! Text is text: a string (value or key) holding a NUL character (`\u0000`,
//! the only way JSON can carry one) is refused with 400 naming it, before
//! anything is parsed into `T` (Postgres cannot store a NUL in `text`).

use poem::{Request, RequestBody};
use poem_openapi::{
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::Type,
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorBody};
use crate::{error::Error, state::AppState};

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

const CONTENT_TYPE: &str = "application/json";

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
            || (essence.len() > 5
                && essence.to_ascii_lowercase().starts_with("application/")
                && essence.to_ascii_lowercase().ends_with("+json"))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        parse(request, body)
            .await
            .map(JsonBody)
            .map_err(ApiError::into_poem)
    }
}

async fn parse<T: DeserializeOwned>(
    request: &Request,
    body: &mut RequestBody,
) -> Result<T, ApiError> {
    let limit = request
        .data::<AppState>()
        .map(|s| s.config.max_body_bytes)
        .unwrap_or(1024 * 1024);
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::PayloadTooLarge { limit }.into());
    }
    let bytes = body
        .take()
        .map_err(|_| {
            ApiError::bad_request("invalid_body", "The request body could not be read.", None)
        })?
        .into_bytes_limit(limit)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => {
                ApiError::from(Error::PayloadTooLarge { limit })
            }
            _ => ApiError::bad_request("invalid_body", "The request body could not be read.", None),
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_body",
            "A JSON request body is required.",
            Some("body".into()),
        ));
    }
    if let Some(field) = nul_field(&bytes) {
        return Err(Error::validation(field, "must not contain a NUL character").into());
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    de.end().map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("The body is not valid JSON: {e}."),
            Some("body".into()),
        )
    })?;
    Ok(value)
}

fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return ApiError::bad_request(
            "invalid_json",
            format!("The body is not valid JSON: {inner}."),
            Some("body".into()),
        );
    }
    let message = strip_position(&inner.to_string());
    // serde reports a missing field at its parent's path, an unknown one at its own.
    let field = match backticked(&message) {
        Some(name) if message.starts_with("missing field") && path == "." => name.to_owned(),
        Some(name) if message.starts_with("missing field") => format!("{path}.{name}"),
        _ if path == "." => "body".into(),
        _ => path,
    };
    ApiError::BadRequest(poem_openapi::payload::Json(
        ErrorBody::new("validation_failed", format!("{field}: {message}")).with_field(field),
    ))
}

/// The field of a JSON document whose text holds a NUL character, if any,
/// named like serde's paths (`name`, `tags[0]`, `metadata.key`; `body` for
/// the document itself). Only a document that spells `\u0000` somewhere is
/// parsed a second time; an invalid one is left to the typed parse to report.
pub fn nul_field(bytes: &[u8]) -> Option<String> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    nul_path(&value)
}

/// The path of the first string (key or value) in `value` holding a NUL
/// character, in serde's notation; `body` when `value` is such a string.
pub fn nul_path(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &mut String) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                let shown: String = key.chars().take(60).collect();
                path.push_str(&shown.replace('\0', "\\u0000"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".into() } else { path })
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

impl<'a, T: Type + DeserializeOwned> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        request_meta::<T>(true)
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(ct) if <Self as Payload>::check_content_type(ct) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            other => Err(ApiError::UnsupportedMediaType(poem_openapi::payload::Json(
                ErrorBody::new(
                    "unsupported_media_type",
                    match other {
                        Some(ct) => format!(
                            "Send the body as application/json, not {}.",
                            ct.chars().take(100).collect::<String>()
                        ),
                        None => "Send the body as application/json (the Content-Type header is missing).".into(),
                    },
                )
                .with_field("body"),
            ))
            .into_poem()),
        }
    }
}

/// The spec's request body of a JSON body of `T`.
fn request_meta<T: Type>(required: bool) -> Option<MetaRequest> {
    Some(MetaRequest {
        description: None,
        content: vec![MetaMediaType {
            content_type: CONTENT_TYPE,
            schema: T::schema_ref(),
        }],
        required,
    })
}

/// A JSON body that may be left out: a request with no body and no
/// `Content-Type` means `{}` (`T::default()`); anything sent is parsed as a
/// [`JsonBody`].
pub struct OptionalJsonBody<T>(pub T);

impl<T: Type> Payload for OptionalJsonBody<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        <JsonBody<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + Default> ParsePayload for OptionalJsonBody<T> {
    const IS_REQUIRED: bool = false;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        <JsonBody<T> as ParsePayload>::from_request(request, body)
            .await
            .map(|b| Self(b.0))
    }
}

impl<'a, T: Type + DeserializeOwned + Default> ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        request_meta::<T>(false)
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let declared_empty = request
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
        let chunked = request
            .headers()
            .contains_key(poem::http::header::TRANSFER_ENCODING);
        if request.content_type().is_none() && declared_empty && !chunked {
            return Ok(Self(T::default()));
        }
        <JsonBody<T> as ApiExtractor>::from_request(request, body, param_opts)
            .await
            .map(|b| Self(b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_and_named() {
        for (body, field) in [
            (r#"{"name": "a\u0000b"}"#, Some("name")),
            (
                r#"{"name": "x", "scopes": ["keys:read", "\u0000"]}"#,
                Some("scopes[1]"),
            ),
            (
                r#"{"metadata": {"k": {"deep": ["\u0000"]}}}"#,
                Some("metadata.k.deep[0]"),
            ),
            (r#"{"a\u0000": 1}"#, Some("a\\u0000")),
            (r#""\u0000""#, Some("body")),
            // An escaped backslash followed by "u0000" is six characters of text.
            (r#"{"name": "\\u0000"}"#, None),
            (r#"{"name": "\u0001 is fine"}"#, None),
            // Not JSON: left to the typed parse to report.
            (r#"{"name": "\u0000""#, None),
        ] {
            assert_eq!(nul_field(body.as_bytes()).as_deref(), field, "{body}");
        }
    }
}
