//! tidemark-streams: everything that renders the change log for readers outside the node.
//!
//! - DynamoDB Streams: [`reader`] serves ListStreams, DescribeStream, GetShardIterator and
//!   GetRecords straight from core's change log, up to the durable watermark, so a record is
//!   readable as soon as its write is acknowledged; [`shard`] names shards and sequence
//!   numbers, [`iterator`] encodes stateless shard iterators, [`record`] renders a change
//!   record per the stream's view type.
//!   [`rotation`] starts new shard generations on a period.
//! - TTL: [`ttl`] runs the sweeper, which expires due items through core (their REMOVE
//!   records are ordinary change records flagged as service deletes).
//!
//! - Kafka: [`publish`] renders change records as Kafka messages and publishes them.
//! - Exports, imports and restores from Kafka: [`transfer`] writes tables as of an instant in
//!   the layout of DynamoDB's export to S3, builds tables from such exports, and rebuilds a
//!   table as of an instant from a topic it published.
//!
//! It only reads core's change log and never writes around core.
#![deny(missing_docs)]

mod error;
pub mod iterator;
pub mod publish;
pub mod reader;
pub mod record;
pub mod rotation;
pub mod shard;
pub mod transfer;
pub mod ttl;

pub use error::{Error, Result};
