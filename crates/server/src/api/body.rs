//! `JsonBody<T>`: the request-body extractor of every operation.
//!
//! The schema in the spec comes from `T`'s poem-openapi `Object` derive; the
//! parsing is serde's, with `serde_path_to_error`, so every malformed body
//! gets a 400 that names the field at fault, unknown fields are refused, and
//! bodies over `max_body_bytes` get a 413 before they are read in full.

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
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
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
