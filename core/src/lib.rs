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
//! - [`Store`] is the engine's seams: open/persist/halt, the write path, reads and snapshots,
//!   the log reader, retention holds, table definitions and stream lanes;
//! - [`ops`]: the store's item operations and table definitions; every item write goes through
//!   [`write`](mod@write), the one read-check-write protocol, with a [`Cause`] (client
//!   request, TTL expiry, replicated from another region, restore) recorded with its change;
//! - services over an `Arc<Store>`, each with its own state, opened together by [`Engine`]:
//!   [`tables`] (DDL, tags, index backfills), [`restore`] ([`Backups`]: continuous and
//!   on-demand backups, restores, imports), [`transactions`], [`ttl`], [`replication`]
//!   (last-writer-wins application of other regions' writes, replica seeding);
//! - [`retention`]: named holds that keep the log from being trimmed under its readers;
//! - `storage`: the only module that opens fjall and reads or writes its keyspaces (key
//!   encoding, codec, commit path); its database and keyspace handles are private to it, so
//!   everything else uses its typed API. Module privacy is all that keeps the rule: [`Error`]
//!   wraps `fjall::Error`, and a `use fjall` elsewhere in this crate would compile;
//! - [`changes`]: the change record and its reader API;
//! - [`stream_log`]: DynamoDB streams as slices of the log (shard lanes and generations);
//! - [`clock`] and [`stamp`]: injected time and hybrid-logical-clock stamps;
//! - [`Halt`]: the stop condition raised when the store can no longer keep its promises.
#![deny(missing_docs)]

pub mod changes;
pub mod clock;
mod engine;
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
pub mod tables;
mod tail;
pub mod transactions;
pub mod ttl;
pub mod write;

pub use changes::{Cause, CauseKind, ChangeKind, ChangeRecord, ChangeSeq};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::Engine;
pub use error::{CancellationReason, Error, Result, Violations};
pub use halt::Halt;
pub use replication::Replication;
pub use restore::Backups;
pub use stamp::{HlcTimestamp, Stamp};
pub use store::{Durability, Store, StoreConfig, TrimReport};
pub use stream_log::{Generation, StreamEnd, StreamInfo};
pub use tables::Tables;
pub use transactions::Transactions;
pub use ttl::Ttl;
