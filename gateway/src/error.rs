//! The error every route answers with, and the one table from a kind of failure to its HTTP
//! status and gRPC code ([`codes`]): the HTTP API and the gRPC API answer the same failure the
//! same way, and an error from below keeps its kind (a storage conflict is a 409 / `ABORTED`,
//! a store that is away a 503 / `UNAVAILABLE`, a client's mistake never a 5xx).

use std::fmt::Display;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flowwatch_ports::{ErrorKind, HasKind};
use serde_json::json;
use tonic::Code;

/// The HTTP status and the gRPC code of a kind of failure: the one table.
pub fn codes(kind: ErrorKind) -> (StatusCode, Code) {
    use ErrorKind as K;
    match kind {
        K::Invalid => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
        K::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument),
        K::Unauthenticated => (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
        K::Forbidden => (StatusCode::FORBIDDEN, Code::PermissionDenied),
        K::NotFound => (StatusCode::NOT_FOUND, Code::NotFound),
        K::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented),
        K::Conflict => (StatusCode::CONFLICT, Code::Aborted),
        K::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted),
        K::RateLimited => (StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
        K::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
        K::Internal => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
    }
}

/// An error as `{"error": {"code", "message", "path"?, "fields"?}}` with the status of its
/// kind.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    code: &'static str,
    message: String,
    /// Where in the request body, as a dotted JSON path.
    path: Option<String>,
    /// Every problem of a rejected document, each with its path.
    fields: Option<serde_json::Value>,
}

impl ApiError {
    /// An error of a kind, with a stable code and a message that says what and where.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            code,
            message: message.into(),
            path: None,
            fields: None,
        }
    }

    /// An error from below, answered by its own kind with `code`.
    pub fn from_error(code: &'static str, e: &(impl HasKind + Display)) -> ApiError {
        ApiError::new(e.kind(), code, e.to_string())
    }

    /// The same error, at `path` of the request body.
    pub fn at(mut self, path: impl Into<String>) -> ApiError {
        self.path = Some(path.into());
        self
    }

    /// The same error, listing every problem found.
    pub fn with_fields(mut self, fields: serde_json::Value) -> ApiError {
        self.fields = Some(fields);
        self
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        codes(self.kind).0
    }

    /// What went wrong and where.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A bad query parameter `path`: 400.
    pub fn query(path: &str, message: String) -> ApiError {
        ApiError::new(ErrorKind::Invalid, "invalid_query", message).at(path)
    }

    /// A store that failed, by the kind of its failure: away is a 503 (the client may try
    /// again), a conflict a 409, a bad argument (a malformed cursor) a 400.
    pub fn store(e: flowwatch_storage::Error) -> ApiError {
        let code = match e.kind() {
            ErrorKind::Unavailable => "store_unavailable",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            _ => "store_failed",
        };
        ApiError::from_error(code, &e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(path) = self.path {
            error["path"] = path.into();
        }
        if let Some(fields) = self.fields {
            error["fields"] = fields;
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

/// The same failure over gRPC: the code of its kind, the same message.
impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        tonic::Status::new(codes(e.kind).1, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_status_and_one_code_and_only_the_servers_are_5xx() {
        use ErrorKind as K;
        let all = [
            K::Invalid,
            K::UnsupportedMediaType,
            K::Unauthenticated,
            K::Forbidden,
            K::NotFound,
            K::MethodNotAllowed,
            K::Conflict,
            K::TooLarge,
            K::RateLimited,
            K::Unavailable,
            K::Internal,
        ];
        for kind in all {
            let (status, code) = codes(kind);
            let servers = matches!(kind, K::Unavailable | K::Internal);
            assert_eq!(status.is_server_error(), servers, "{kind:?}");
            assert_eq!(
                matches!(code, Code::Unavailable | Code::Internal),
                servers,
                "{kind:?}"
            );
            let e = tonic::Status::from(ApiError::new(kind, "x", "what went wrong"));
            assert_eq!((e.code(), e.message()), (code, "what went wrong"));
        }
        assert_eq!(codes(K::Conflict), (StatusCode::CONFLICT, Code::Aborted));
    }

    #[test]
    fn a_storage_error_keeps_its_kind() {
        let conflict = ApiError::store(flowwatch_storage::Error::Conflict {
            expected: 1,
            current: 2,
        });
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        let cursor = ApiError::store(flowwatch_storage::Error::Invalid {
            what: "malformed cursor \"x\"".into(),
        });
        assert_eq!(cursor.status(), StatusCode::BAD_REQUEST);
        assert!(cursor.message().contains("cursor"));
        let away = ApiError::store(flowwatch_storage::Error::Backend {
            backend: "postgres",
            detail: "connection refused".into(),
            source: "connection refused".into(),
        });
        assert_eq!(away.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
