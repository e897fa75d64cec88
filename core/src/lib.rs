//! tidemark-core: the item store.
//!
//! Owns tables, items, the expression language and the change log, all in one fjall database
//! that only its storage crate touches.
//! Data flows one way: a typed request ([`ops`]) is checked against the table's schema, its
//! expressions ([`expr`]) are evaluated against the old item under the item's key lock, and the
//! result is committed as ONE atomic batch holding the item, its change record and its
//! last-writer-wins [`Stamp`]; the write is acknowledged once durable in the node's mode.
//! Everything downstream (streams, Kafka, replication, restore) reads the change log
//! ([`changes`]) up to the durable watermark and never writes around the store.
//!
//! - from tidemark-model, re-exported here at their usual paths: [`model`] (attribute values,
//!   exact numbers, items, schemas, [`TableId`]), [`changes`] (the change record, [`ChangeSeq`]
//!   and the log cursor), [`stream_log`] (DynamoDB streams as slices of the log: shard lanes
//!   and generations), [`clock`] and [`stamp`] (injected time and hybrid-logical-clock
//!   stamps), [`Halt`] (the stop condition raised when the store can no longer keep its
//!   promises) and [`Error`];
//! - [`expr`]: the expression language, pure;
//! - [`partiql`]: PartiQL statements, parsed and translated into the operations of [`ops`];
//! - [`Store`] is the engine's seams: open/persist/halt, the write path, reads and snapshots,
//!   the log reader, retention holds, table definitions, stream lanes and the records of
//!   export and import jobs;
//! - [`ops`]: the store's item operations and table definitions; every item write goes through
//!   [`write`](mod@write), the one read-check-write protocol, with a [`Cause`] (client
//!   request, TTL expiry, replicated from another region, restore) recorded with its change;
//! - services over an `Arc<Store>`, each with its own state, opened together by [`Engine`]:
//!   [`tables`] (DDL, tags, index backfills), [`restore`] ([`Backups`]: continuous and
//!   on-demand backups, restores, imports), [`transactions`], [`ttl`], [`replication`]
//!   (last-writer-wins application of other regions' writes, replica seeding);
//! - [`WriteFence`]: pauses this node's own writes while its clock cannot be trusted (the
//!   replicator raises it);
//! - [`retention`]: named holds that keep the log from being trimmed under its readers;
//! - `storage` (the tidemark-storage crate): the only code that knows fjall (keyspaces, key
//!   encoding, codec, commit path); its keyspace handles are private to it, everything else
//!   uses its typed API. tidemark-core does not depend on fjall, so a fjall use here does not
//!   compile.
#![deny(missing_docs)]

mod engine;
pub mod expr;
mod fence;
pub mod ops;
pub mod partiql;
pub mod replication;
pub mod restore;
pub mod retention;
mod store;
pub mod tables;
mod tail;
pub mod transactions;
pub mod ttl;
pub mod write;

#[cfg(test)]
mod storage_tests;

// The data modules live in tidemark-model (below storage) and read here at the paths they
// always had; storage is its own crate, the only one that depends on fjall.
use tidemark_model::error;
pub use tidemark_model::{changes, clock, model, stamp, stream_log};
use tidemark_storage as storage;
pub use tidemark_storage::keys::log_partition;

pub use engine::Engine;
pub use fence::WriteFence;
pub use replication::Replication;
pub use restore::Backups;
pub use store::{Durability, Store, StoreConfig, TrimReport};
pub use tables::Tables;
pub use tidemark_model::{CancellationReason, Error, Halt, Result, StorageFailure, Violations};
pub use tidemark_model::{
    Cause, CauseKind, ChangeKind, ChangeRecord, ChangeSeq, Clock, ManualClock, OffsetClock,
    SystemClock,
};
pub use tidemark_model::{Generation, HlcTimestamp, Stamp, StreamEnd, StreamInfo, TableId};
pub use transactions::Transactions;
pub use ttl::Ttl;
