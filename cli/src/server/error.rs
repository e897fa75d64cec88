//! [`ApiError`]: every failure a client can see, with DynamoDB's exception name, namespace,
//! HTTP status and message. Core errors cross into the wire format here and only here.

use axum::http::StatusCode;
use serde::Serialize;
use tidemark_core::model::{Item, VALIDATION_ERROR_MARKER};
use tidemark_core::{CancellationReason, Error};

const SERVICE: &str = "com.amazonaws.dynamodb.v20120810";
const VALIDATE: &str = "com.amazon.coral.validate";
const CORAL: &str = "com.amazon.coral.service";

/// A DynamoDB error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status (400 for client errors, 500 for internal ones).
    pub status: StatusCode,
    /// Namespace and name, e.g. `com.amazon.coral.validate#ValidationException`.
    pub type_name: String,
    /// Human-readable message.
    pub message: String,
    /// The old item, for ConditionalCheckFailedException with ALL_OLD.
    pub item: Option<Item>,
    /// Per-action reasons, for TransactionCanceledException.
    pub cancellation_reasons: Option<Vec<CancellationReason>>,
    /// Transaction errors spell their message member `Message`, the others `message`.
    pub capitalised_message: bool,
    /// The failure is fatal to the node ([`tidemark_core::Error::is_fatal`]).
    pub fatal: bool,
}

impl ApiError {
    fn new(status: StatusCode, namespace: &str, name: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            type_name: format!("{namespace}#{name}"),
            message: message.into(),
            item: None,
            cancellation_reasons: None,
            capitalised_message: false,
            fatal: false,
        }
    }

    /// The error inside DynamoDB's `1 validation error detected: ` envelope, as PutItem,
    /// UpdateItem and DeleteItem now report their request's validation (a message that
    /// counts its violations already is left alone).
    pub fn enveloped(mut self) -> Self {
        let counted = self.message.split_once(' ').is_some_and(|(n, rest)| {
            n.parse::<u32>().is_ok() && rest.starts_with("validation error")
        });
        if self.type_name.ends_with("#ValidationException") && !counted {
            self.message = format!("1 validation error detected: {}", self.message);
        }
        self
    }

    /// ValidationException.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            VALIDATE,
            "ValidationException",
            message,
        )
    }

    /// A DynamoDB exception of the service's namespace (status 400), by name.
    pub fn service(name: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, SERVICE, name, message)
    }

    /// An exception of the request framework's namespace (status 400), by name: the
    /// authentication errors.
    pub fn coral(name: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, CORAL, name, message)
    }

    /// SerializationException: the body is not the JSON the operation takes.
    pub fn serialization(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            CORAL,
            "SerializationException",
            message,
        )
    }

    /// UnknownOperationException.
    pub fn unknown_operation() -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            CORAL,
            "UnknownOperationException",
            "",
        )
    }

    /// InternalServerError.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            SERVICE,
            "InternalServerError",
            message,
        )
    }

    /// Maps a JSON decoding error: values that are well-formed JSON but not valid DynamoDB
    /// values are validation errors, everything else a serialization error.
    pub fn from_json(error: &serde_json::Error) -> Self {
        let text = error.to_string();
        match text.find(VALIDATION_ERROR_MARKER) {
            Some(at) => {
                let message = text.get(at + VALIDATION_ERROR_MARKER.len()..).unwrap_or("");
                ApiError::validation(strip_position(message))
            }
            // Like DynamoDB, a body that is not JSON at all gets no message.
            None if error.is_syntax() || error.is_eof() => ApiError::serialization(""),
            None => ApiError::serialization(strip_position(&text)),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Reason<'a> {
            #[serde(rename = "Code")]
            code: &'a str,
            #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
            #[serde(rename = "Item", skip_serializing_if = "Option::is_none")]
            item: Option<&'a Item>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "__type")]
            type_name: &'a str,
            #[serde(rename = "message", skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
            #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
            capitalised: Option<&'a str>,
            #[serde(rename = "Item", skip_serializing_if = "Option::is_none")]
            item: Option<&'a Item>,
            #[serde(
                rename = "CancellationReasons",
                skip_serializing_if = "Option::is_none"
            )]
            reasons: Option<Vec<Reason<'a>>>,
        }
        let message = self.message.as_str();
        let body = Body {
            type_name: &self.type_name,
            message: (!self.capitalised_message).then_some(message),
            capitalised: self.capitalised_message.then_some(message),
            item: self.item.as_ref(),
            reasons: self.cancellation_reasons.as_ref().map(|reasons| {
                reasons
                    .iter()
                    .map(|r| Reason {
                        code: &r.code,
                        message: r.message.as_deref(),
                        item: r.item.as_ref(),
                    })
                    .collect()
            }),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// serde_json appends " at line L column C"; clients should see DynamoDB's message only.
pub(crate) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message.get(..at).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

impl From<tidemark_streams::Error> for ApiError {
    fn from(error: tidemark_streams::Error) -> Self {
        use tidemark_streams::Error as Streams;
        let bad = StatusCode::BAD_REQUEST;
        let message = error.to_string();
        match error {
            Streams::Validation(_) => ApiError::validation(message),
            Streams::ResourceNotFound(_) => {
                ApiError::new(bad, SERVICE, "ResourceNotFoundException", message)
            }
            Streams::ExpiredIterator => {
                ApiError::new(bad, SERVICE, "ExpiredIteratorException", message)
            }
            Streams::TrimmedDataAccess => {
                ApiError::new(bad, SERVICE, "TrimmedDataAccessException", message)
            }
            Streams::Core(core) => core.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<tidemark_streams::transfer::Error> for ApiError {
    fn from(error: tidemark_streams::transfer::Error) -> Self {
        use tidemark_streams::transfer::Error as Transfer;
        match error {
            Transfer::Core(core) => core.into(),
            Transfer::Validation(message) | Transfer::Invalid(message) => {
                ApiError::validation(message)
            }
            Transfer::ExportNotFound(message) => {
                ApiError::service("ExportNotFoundException", message)
            }
            Transfer::ImportNotFound(message) => {
                ApiError::service("ImportNotFoundException", message)
            }
            Transfer::InvalidExportTime(message) => {
                ApiError::service("InvalidExportTimeException", message)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<tidemark_replicator::Error> for ApiError {
    fn from(error: tidemark_replicator::Error) -> Self {
        use tidemark_replicator::Error as Replication;
        use tidemark_replicator::client::PeerError;
        match error {
            Replication::Core(core) => core.into(),
            Replication::Validation(message) => ApiError::validation(message),
            Replication::InUse(message) => ApiError::service("ResourceInUseException", message),
            Replication::NotAllowed(message) => ApiError::new(
                StatusCode::FORBIDDEN,
                CORAL,
                "AccessDeniedException",
                message,
            ),
            Replication::Peer(PeerError::Refused { region, refusal }) => {
                let message = format!("region {region}: {}", refusal.message);
                match refusal.error.as_str() {
                    "ValidationException" => ApiError::validation(message),
                    "ResourceInUseException" | "ResourceNotFoundException" => {
                        ApiError::service(&refusal.error, message)
                    }
                    _ => ApiError::internal(message),
                }
            }
            ahead @ Replication::ClockAhead { .. } => ApiError::internal(ahead.to_string()),
            Replication::Peer(unreachable @ PeerError::Unreachable { .. }) => {
                ApiError::internal(unreachable.to_string())
            }
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let bad = StatusCode::BAD_REQUEST;
        match error {
            Error::Validation(message) => ApiError::validation(message),
            Error::ConditionalCheckFailed { item } => {
                let mut e = ApiError::new(
                    bad,
                    SERVICE,
                    "ConditionalCheckFailedException",
                    "The conditional request failed",
                );
                e.item = item.map(|b| *b);
                e
            }
            Error::TransactionCanceled { reasons } => {
                let message = Error::TransactionCanceled {
                    reasons: reasons.clone(),
                }
                .to_string();
                let mut e = ApiError::new(bad, SERVICE, "TransactionCanceledException", message);
                e.cancellation_reasons = Some(reasons);
                e.capitalised_message = true;
                e
            }
            Error::IdempotentParameterMismatch(message) => {
                let mut e = ApiError::new(
                    bad,
                    SERVICE,
                    "IdempotentParameterMismatchException",
                    message,
                );
                e.capitalised_message = true;
                e
            }
            Error::DuplicateItem(message) => {
                ApiError::new(bad, SERVICE, "DuplicateItemException", message)
            }
            Error::ResourceNotFound(message) => {
                ApiError::new(bad, SERVICE, "ResourceNotFoundException", message)
            }
            Error::ResourceInUse(message) => {
                ApiError::new(bad, SERVICE, "ResourceInUseException", message)
            }
            Error::AccessDenied(message) => ApiError::coral("AccessDeniedException", message),
            Error::TableNotFound(message) => ApiError::service("TableNotFoundException", message),
            Error::TableAlreadyExists(message) => {
                ApiError::service("TableAlreadyExistsException", message)
            }
            Error::TableInUse(message) => ApiError::service("TableInUseException", message),
            Error::BackupNotFound(message) => ApiError::service("BackupNotFoundException", message),
            Error::BackupInUse(message) => ApiError::service("BackupInUseException", message),
            Error::InvalidRestoreTime(message) => {
                ApiError::service("InvalidRestoreTimeException", message)
            }
            Error::PointInTimeRecoveryUnavailable(message) => {
                ApiError::service("PointInTimeRecoveryUnavailableException", message)
            }
            Error::LimitExceeded(message) => {
                ApiError::new(bad, SERVICE, "LimitExceededException", message)
            }
            e @ Error::ItemCollectionSizeLimitExceeded { .. } => ApiError::new(
                bad,
                SERVICE,
                "ItemCollectionSizeLimitExceededException",
                e.to_string(),
            ),
            // Retryable (SDKs retry a 500), and not a fault of the node to log per request:
            // the fence logs once when it is raised.
            paused @ Error::WritesPaused(_) => ApiError::internal(paused.to_string()),
            // A cluster region's check of a request up to its writes: not a failure.
            checked @ Error::WriteChecked => ApiError::internal(checked.to_string()),
            other => {
                tracing::error!(error = %other, "internal error");
                let mut e = ApiError::internal(other.to_string());
                e.fatal = other.is_fatal();
                e
            }
        }
    }
}
