//! tidemark-streams: everything that renders the change log for readers outside the node.
//!
//! It will own DynamoDB Streams (records, shards, iterators), TTL expiry (a sweeper that
//! deletes expired items through core, so their REMOVE records are ordinary change records
//! marked as service deletes), publishing to Kafka and point-in-time restore. It only reads
//! core's change log (`tidemark_core::Store::read_changes`, up to the durable watermark) and
//! never writes around core. Nothing is implemented here yet: the change log it reads is.
