//! The API's one error type: every failure becomes an `application/problem+json` document
//! (RFC 9457) with a stable machine-readable `code`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use contingent_domain::Refusal;
use contingent_registry::RegistryError;
use serde::Serialize;
use utoipa::ToSchema;

/// A failed request.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub detail: String,
    /// The request field at fault, as a JSON path.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A problem with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 429 for a caller or an address over its rate.
    pub fn too_many_requests(detail: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail).retry_after(retry_after)
    }

    /// Says when a retry may succeed (rounded up to whole seconds, at least one).
    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// 400 for a bad request.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404 for something not in the registry.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// The field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn title(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "The request is malformed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::UNAUTHORIZED => "Authentication required",
            StatusCode::FORBIDDEN => "Outside the caller's reach",
            StatusCode::CONFLICT => "The registry's rules refuse this",
            StatusCode::UNPROCESSABLE_ENTITY => "The facts given are impossible",
            StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
            StatusCode::SERVICE_UNAVAILABLE => "The registry is unavailable",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            _ => "Internal error",
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Refused(domain) => {
                let status = match domain.refusal() {
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Conflict => StatusCode::CONFLICT,
                    Refusal::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, domain.code(), domain.to_string())
            }
            RegistryError::Forbidden(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
            }
            RegistryError::IdempotencyKeyReused { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                e.to_string(),
            ),
            RegistryError::Unavailable(detail) => {
                tracing::error!(%detail, "registry unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the registry could not complete the request; nothing was recorded, retry with the same Idempotency-Key",
                )
                .retry_after(std::time::Duration::from_secs(1))
            }
        }
    }
}

impl From<sqlx_error::Error> for ApiError {
    fn from(e: sqlx_error::Error) -> Self {
        tracing::error!(error = %e, "read model query failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the read models could not be queried",
        )
        .retry_after(std::time::Duration::from_secs(1))
    }
}

/// Re-export of the read side's error type, so handlers can use `?` on queries.
pub mod sqlx_error {
    pub use contingent_projections::queries::QueryError as Error;
}

/// A problem document (RFC 9457), as every error is answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// What kind of problem, by status.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// Stable machine-readable code (docs/errors.md).
    pub code: &'static str,
    /// The request field at fault: a query parameter, or a JSON path into the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let body = Problem {
            problem_type: format!("/problems/{}", self.code),
            title: self.title(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
            field: self.field,
        };
        let body = serde_json::to_string(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}
