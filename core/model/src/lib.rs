//! tidemark-model: the data the item store and its storage share.
//!
//! Sits below both tidemark-storage (which stores these types) and tidemark-core (which
//! re-exports each at the path it always had there: the modules under their names, [`Halt`]
//! and [`Error`] at its root, the key condition types in its `expr`; so its users see one
//! crate):
//!
//! - [`model`]: attribute values, exact numbers, items, schemas (serde in DynamoDB JSON shape),
//!   and a table's internal id, [`TableId`];
//! - [`key_condition`]: a Query's key condition, as storage turns it into a key range;
//! - [`changes`]: the change record, its position in the log ([`ChangeSeq`]) and its reader
//!   API (the log cursor);
//! - [`stream_log`]: DynamoDB streams as slices of the log (shard lanes and generations);
//! - [`clock`] and [`stamp`]: injected time and hybrid-logical-clock stamps;
//! - [`Halt`]: the stop condition raised when the store can no longer keep its promises;
//! - [`error`]: the error of every core operation; a storage engine failure is an opaque
//!   [`StorageFailure`], because only storage knows the engine.
#![deny(missing_docs)]

pub mod changes;
pub mod clock;
pub mod error;
mod halt;
pub mod key_condition;
pub mod model;
mod numbered;
pub mod stamp;
pub mod stream_log;

pub use changes::{Cause, CauseKind, ChangeKind, ChangeRecord, ChangeSeq};
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use error::{CancellationReason, Error, Result, StorageFailure, Violations};
pub use halt::Halt;
pub use model::TableId;
pub use stamp::{HlcTimestamp, Stamp};
pub use stream_log::{Generation, StreamEnd, StreamInfo};
