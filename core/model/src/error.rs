//! The error type of every core operation. Each variant maps to exactly one DynamoDB exception
//! in the HTTP layer; messages are DynamoDB's wording where the tests of real clients read them.

use std::fmt;

use crate::model::{Item, NumberError};

/// Result of core operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why one action of a transaction was cancelled.
#[derive(Debug, Clone, PartialEq)]
pub struct CancellationReason {
    /// `None`, `ConditionalCheckFailed`, `ValidationError` or `ItemCollectionSizeLimitExceeded`.
    pub code: String,
    /// Details, absent for `None`.
    pub message: Option<String>,
    /// The item as it was, for a failed condition with ALL_OLD.
    pub item: Option<Item>,
}

/// What went wrong in a core operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is invalid (DynamoDB's ValidationException).
    #[error("{0}")]
    Validation(String),
    /// A condition evaluated to false; carries the old item when the request asked for it.
    #[error("The conditional request failed")]
    ConditionalCheckFailed {
        /// The item as it was, for `ReturnValuesOnConditionCheckFailure=ALL_OLD`.
        item: Option<Box<Item>>,
    },
    /// A transaction was cancelled; one reason per action, in request order.
    #[error("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", .reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", "))]
    TransactionCanceled {
        /// Why each action was (or would have been) cancelled; `None` for the others.
        reasons: Vec<CancellationReason>,
    },
    /// A PartiQL INSERT found an item with its key (DuplicateItemException).
    #[error("{0}")]
    DuplicateItem(String),
    /// A ClientRequestToken was reused with a different request.
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    /// The table (or index) does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The request names a resource of another account (AccessDeniedException).
    #[error("{0}")]
    AccessDenied(String),
    /// The table already exists, or is busy.
    #[error("{0}")]
    ResourceInUse(String),
    /// Backups and restores: the table does not exist (TableNotFoundException).
    #[error("{0}")]
    TableNotFound(String),
    /// Restores: the target table exists already (TableAlreadyExistsException).
    #[error("{0}")]
    TableAlreadyExists(String),
    /// Backups and restores: the table is being created or deleted (TableInUseException).
    #[error("{0}")]
    TableInUse(String),
    /// No backup has this ARN (BackupNotFoundException).
    #[error("{0}")]
    BackupNotFound(String),
    /// The backup is being created, or restored from (BackupInUseException).
    #[error("{0}")]
    BackupInUse(String),
    /// The restore time is outside the restorable window (InvalidRestoreTimeException).
    #[error("{0}")]
    InvalidRestoreTime(String),
    /// Point-in-time recovery is not enabled on the source
    /// (PointInTimeRecoveryUnavailableException).
    #[error("{0}")]
    PointInTimeRecoveryUnavailable(String),
    /// A write would take an item collection of a table with local secondary indexes past
    /// its size limit (ItemCollectionSizeLimitExceededException); nothing was written.
    #[error("{}", ITEM_COLLECTION_LIMIT_MESSAGE)]
    ItemCollectionSizeLimitExceeded {
        /// Storage key of the item whose write was refused (a transaction names its action).
        item_key: Vec<u8>,
    },
    /// A limit of the account or table was reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// The storage engine failed; the write may not have happened.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageFailure),
    /// Stored bytes do not decode: the data folder is damaged. Fatal.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The store stopped accepting writes because it can no longer keep its durability
    /// promise (a journal sync failed). Fatal: the node exits and recovery runs on restart.
    #[error("the store has stopped: {0}")]
    Halted(String),
    /// This node pauses its own writes (client requests, TTL expiry) for the reason given,
    /// for as long as it holds (its clock is too far from its peers'); reads go on.
    #[error("this node refuses writes for now: {0}")]
    WritesPaused(String),
    /// An invariant of the stored data does not hold.
    #[error("internal error: {0}")]
    Internal(String),
    /// A write reached inside a check of a request up to its writes, stopped before it locked,
    /// read or wrote anything (a cluster region's node checks a request before it logs it).
    #[error("the write was checked and not made")]
    WriteChecked,
}

impl Error {
    /// A validation error with the given message.
    pub fn validation(message: impl Into<String>) -> Self {
        Error::Validation(message.into())
    }

    /// True when the node cannot go on after this error: stored data is corrupt, a journal
    /// sync failed, or the storage engine is poisoned. Whoever sees one halts the store
    /// (`Store::halt`) and the node exits non-zero.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Corrupt(_) | Error::Halted(_) => true,
            Error::Storage(failure) => failure.fatal,
            _ => false,
        }
    }
}

impl From<crate::stamp::ClockError> for Error {
    fn from(e: crate::stamp::ClockError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<NumberError> for Error {
    fn from(e: NumberError) -> Self {
        Error::Validation(e.to_string())
    }
}

/// A failure of the storage engine, opaque outside storage (the only crate that knows the
/// engine): it reads, chains and debug-prints exactly as the engine's own error.
pub struct StorageFailure {
    cause: Box<dyn std::error::Error + Send + Sync>,
    fatal: bool,
}

impl StorageFailure {
    /// The engine's error `cause`; `fatal` when the engine can no longer be used (poisoned).
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static, fatal: bool) -> Self {
        StorageFailure {
            cause: Box::new(cause),
            fatal,
        }
    }
}

impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cause.fmt(f)
    }
}

impl fmt::Debug for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cause.fmt(f)
    }
}

impl std::error::Error for StorageFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.source()
    }
}

/// DynamoDB's message when a write would take an item collection past its limit (the
/// documented `message` of ItemCollectionSizeLimitExceededException in the API reference).
pub const ITEM_COLLECTION_LIMIT_MESSAGE: &str =
    "The total size of an item collection has exceeded the maximum limit of 10 gigabytes.";

/// The constraint DynamoDB gives for names.
pub const NAME_PATTERN: &str = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+";

/// True for a non-empty run of `[a-zA-Z0-9_.-]`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The constraint violations of one request, reported together in the order they were
/// found, as DynamoDB's request validation reports them (`N validation errors detected: ...;
/// ...`).
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// A required member that is missing.
    pub fn null(&mut self, field: &str) {
        self.0.push(format!(
            "Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// A member whose value breaks `constraint`.
    pub fn breaks(&mut self, value: &str, field: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A table or index name that breaks DynamoDB's rules (3 to 255 characters of
    /// `[a-zA-Z0-9_.-]`): the length violation first, then the pattern's, as DynamoDB reports
    /// a `tableName` breaking both.
    pub fn name(&mut self, name: &str, field: &str) {
        self.length(name, field, 3, 255);
        if !is_name(name) {
            self.breaks(name, field, NAME_PATTERN);
        }
    }

    /// A `TableName` of a call that also takes the table's ARN there (every table and item
    /// call but CreateTable): 1 to 1024 characters, and a plain name keeps the name rules,
    /// the pattern's violation before the length's.
    pub fn table_reference(&mut self, name: &str, field: &str) {
        if name.is_empty() || name.starts_with("arn:") {
            self.length(name, field, 1, 1024);
            return;
        }
        if !is_name(name) {
            self.breaks(name, field, NAME_PATTERN);
        }
        self.length(name, field, 3, 255);
    }

    /// A member that must be one of `allowed` (listed in DynamoDB's order for its message).
    pub fn one_of(&mut self, value: &str, field: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.breaks(value, field, &enum_constraint(allowed));
        }
    }

    /// The error of one violation: `value` at `field` breaks `constraint`.
    pub fn one(value: &str, field: &str, constraint: &str) -> Error {
        let mut violations = Violations::default();
        violations.breaks(value, field, constraint);
        violations.into_error()
    }

    /// The error of `value` at `field`, which is none of `allowed`.
    pub fn not_one_of(value: &str, field: &str, allowed: &[&str]) -> Error {
        Violations::one(value, field, &enum_constraint(allowed))
    }

    /// The error of the required member `field`, missing.
    pub fn missing(field: &str) -> Error {
        let mut violations = Violations::default();
        violations.null(field);
        violations.into_error()
    }

    /// A string member outside `min..=max` characters.
    pub fn length(&mut self, value: &str, field: &str, min: usize, max: usize) {
        let chars = value.chars().count();
        if chars < min {
            let constraint = format!("Member must have length greater than or equal to {min}");
            self.breaks(value, field, &constraint);
        } else if chars > max {
            let constraint = format!("Member must have length less than or equal to {max}");
            self.breaks(value, field, &constraint);
        }
    }

    /// Nothing, or every violation found in one validation error.
    ///
    /// # Errors
    /// Validation, when a violation was found.
    pub fn check(self) -> Result<()> {
        match self.0.is_empty() {
            true => Ok(()),
            false => Err(self.into_error()),
        }
    }

    /// The violations found (at least one) as one validation error.
    fn into_error(self) -> Error {
        match self.0.len() {
            1 => Error::Validation(format!("1 validation error detected: {}", self.0.concat())),
            n => Error::Validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            )),
        }
    }
}

/// DynamoDB's constraint for a member that must be one of `allowed`.
fn enum_constraint(allowed: &[&str]) -> String {
    format!(
        "Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    )
}
