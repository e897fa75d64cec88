//! Errors of the Streams API, shaped by what the caller does next.

/// Why a Streams request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed (bad ARN, shard id, iterator, sequence number or limit).
    #[error("{0}")]
    Validation(String),
    /// The stream or shard does not exist (any more).
    #[error("{0}")]
    ResourceNotFound(String),
    /// The iterator is older than 15 minutes.
    #[error("The provided iterator exceeds the maximum age allowed")]
    ExpiredIterator,
    /// The position lies before the oldest record still kept.
    #[error("The data you are trying to access has been trimmed.")]
    TrimmedDataAccess,
    /// The store failed.
    #[error(transparent)]
    Core(#[from] tidemark_core::Error),
}

impl Error {
    /// True when the node cannot go on after this error (a fatal store error).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Core(e) if e.is_fatal())
    }
}

/// Result of a Streams operation.
pub type Result<T> = std::result::Result<T, Error>;
