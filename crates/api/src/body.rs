//! Request bodies read leniently: the bytes are parsed into JSON (or form fields) here, and the
//! domain validates them property by property, so every violation is reported at once (SPEC 1).
//! The OpenAPI schema of a body still comes from its documented type `T`.

use std::collections::HashMap;
use std::marker::PhantomData;

use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;

use crate::error::{ApiError, Code};

/// The largest body accepted (SPEC: bodies over 1 MiB are refused with 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body documented as `T` and delivered as raw JSON.
pub struct Body<T> {
    pub value: Value,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Body<T> {
    pub fn new(value: Value) -> Self {
        Self {
            value,
            _doc: PhantomData,
        }
    }
}

/// Reads at most [`MAX_BODY`] bytes of the body.
pub async fn read_limited(body: &mut RequestBody) -> Result<Vec<u8>, ApiError> {
    let raw = body
        .take()
        .map_err(|_| ApiError::new(Code::InvalidBody, "The body is missing."))?;
    match raw.into_bytes_limit(MAX_BODY).await {
        Ok(b) => Ok(b.to_vec()),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(ApiError::new(
            Code::TooLarge,
            "The body is larger than 1 MiB.",
        )),
        Err(_) => Err(ApiError::new(
            Code::InvalidBody,
            "The body could not be read.",
        )),
    }
}

fn unsupported_type() -> ApiError {
    ApiError::with_status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        300,
        "The content type is not supported by this route.",
    )
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body: missing → 400/300; not JSON → 415/300; invalid JSON → 400/300.
pub async fn read_json(request: &Request, body: &mut RequestBody) -> Result<Value, ApiError> {
    let bytes = read_limited(body).await?;
    match request.content_type() {
        Some(ct) if !is_json(ct) => return Err(unsupported_type()),
        None if !bytes.is_empty() => return Err(unsupported_type()),
        _ => {}
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(Code::InvalidBody, "The body is missing."));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidBody,
            format!("The body is not valid JSON: {e}."),
        )
    })
}

impl<'a, T: Type> ApiExtractor<'a> for Body<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self::new(read_json(request, body).await?))
    }
}

/// A form-encoded body (`application/x-www-form-urlencoded`) documented as `T`.
pub struct FormBody<T> {
    pub fields: HashMap<String, String>,
    _doc: PhantomData<fn() -> T>,
}

impl<'a, T: Type> ApiExtractor<'a> for FormBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/x-www-form-urlencoded",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_limited(body).await?;
        let form = request.content_type().map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        match form {
            Some(true) => {}
            Some(false) => return Err(unsupported_type().into()),
            None if !bytes.is_empty() => return Err(unsupported_type().into()),
            None => return Err(ApiError::new(Code::InvalidBody, "The body is missing.").into()),
        }
        let fields = url::form_urlencoded::parse(&bytes).into_owned().collect();
        Ok(Self {
            fields,
            _doc: PhantomData,
        })
    }
}
