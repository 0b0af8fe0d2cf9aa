//! The REST edge of `Idempotency-Key` (logic in `service::idempotency`):
//! [`StoredJson`], a JSON body already rendered to bytes (so a replay is the
//! first response byte for byte) with `T`'s schema in the spec, and [`run`],
//! which fingerprints the request and renders the effect's result.

use std::marker::PhantomData;

use poem::{IntoResponse, Request, Response};
use poem_openapi::{
    param::Header,
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};

use super::{auth::Auth, error::ApiResult};
use crate::{
    error::{Error, Result},
    scope::Scope,
    service::idempotency::{self, Request as Fingerprint},
    state::AppState,
};

/// A JSON body of type `T`, already serialized.
pub struct StoredJson<T>(Vec<u8>, PhantomData<T>);

impl<T: Type> Payload for StoredJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for StoredJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE_STR)
            .body(self.0)
    }
}

impl<T> StoredJson<T> {
    const CONTENT_TYPE_STR: &'static str = "application/json; charset=utf-8";
}

fn render(value: &impl ToJSON) -> Result<Vec<u8>> {
    serde_json::to_vec(&value.to_json()).map_err(|e| Error::caused_by("rendering a response", e))
}

/// Run `effect` under the request's `Idempotency-Key`, if it has one (see
/// `service::idempotency`); `body` is the parsed request body, fingerprinted
/// with the method and path. `status` is the status of the success variant
/// the handler wraps the result in.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<T, F>(
    state: &AppState,
    auth: &Auth,
    scope: Scope,
    key: &Header<Option<String>>,
    request: &Request,
    body: &impl ToJSON,
    status: u16,
    effect: F,
) -> ApiResult<StoredJson<T>>
where
    T: ToJSON,
    F: std::future::Future<Output = Result<T>>,
{
    let request_body = render(body)?;
    let bytes = idempotency::run(
        state,
        &auth.0,
        scope,
        key.0.as_deref(),
        Fingerprint {
            method: request.method().as_str(),
            path: request.uri().path(),
            body: &request_body,
        },
        status,
        async { render(&effect.await?) },
    )
    .await?;
    Ok(StoredJson(bytes, PhantomData))
}
