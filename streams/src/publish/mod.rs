//! Publishing a table's changes to Kafka.
//!
//! [`format`] turns a change record into Kafka messages: the key (the item's primary key as
//! canonical JSON, so one item's changes land on one partition, in order), the headers
//! (sequence, event id, event name, origin region) and the value in one of three formats.
//! [`settings`] keeps which tables are published and how far (a core table extension and a
//! retention hold); [`session`] is one table's publishing session over any [`session::Sink`],
//! and [`resume`] decides where it resumes from what the topic already holds, so a crash
//! neither loses nor repeats a record; [`kafka`] runs a session task per published table with
//! a Kafka sink, [`memory`] is a sink in memory for tests. [`kinesis`] carries out DynamoDB's
//! Kinesis streaming destination calls as publishing settings.

pub mod format;
pub mod kafka;
pub mod kinesis;
pub mod memory;
pub mod resume;
pub mod session;
pub mod settings;
