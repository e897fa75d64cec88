//! tidemark-core: the item store.
//!
//! Owns tables, items, the expression language and the change log, all in one fjall database.
//! Data flows one way: a typed request ([`ops`]) is checked against the table's schema, its
//! expressions ([`expr`]) are evaluated against the old item under the item's key lock, and the
//! result is committed as ONE atomic batch holding the item, its change record and its
//! last-writer-wins [`Stamp`]; the write is acknowledged once durable in the node's mode.
//! Everything downstream (streams, Kafka, replication, restore) reads the change log
//! ([`changes`]) up to the durable watermark and never writes around the store.
//!
//! - [`model`]: attribute values, exact numbers, items, schemas (serde in DynamoDB JSON shape);
//! - [`expr`]: the expression language, pure;
//! - [`partiql`]: PartiQL statements, parsed and translated into the operations of [`ops`];
//! - [`ops`]: one file per operation's semantics; every item write goes through [`write`], the
//!   one read-check-write protocol, with a [`Cause`] (client request, TTL expiry, replicated
//!   from another region, restore) recorded with its change;
//! - [`replication`]: last-writer-wins application of other regions' writes;
//! - [`retention`]: named holds that keep the log from being trimmed under its readers;
//! - [`restore`]: continuous and on-demand backups, and restores into new tables;
//! - `storage`: the only module that knows fjall (keyspaces, key encoding, codec, commit path);
//! - [`changes`]: the change record and its reader API;
//! - [`stream_log`]: DynamoDB streams as slices of the log (shard lanes and generations);
//! - [`clock`] and [`stamp`]: injected time and hybrid-logical-clock stamps;
//! - [`Halt`]: the stop condition raised when the store can no longer keep its promises.
#![deny(missing_docs)]

pub mod changes;
pub mod clock;
mod error;
pub mod expr;
mod halt;
pub mod model;
pub mod ops;
pub mod partiql;
pub mod replication;
pub mod restore;
pub mod retention;
pub mod stamp;
mod storage;
mod store;
pub mod stream_log;
mod tail;
pub mod write;

pub use changes::{Cause, CauseKind, ChangeKind, ChangeRecord, ChangeSeq};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CancellationReason, Error, Result, Violations};
pub use halt::Halt;
pub use stamp::{HlcTimestamp, Stamp};
pub use store::{Durability, Store, StoreConfig, TrimReport};
pub use stream_log::{Generation, StreamEnd, StreamInfo};
