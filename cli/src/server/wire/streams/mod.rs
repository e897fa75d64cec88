//! DynamoDB Streams operations (`X-Amz-Target: DynamoDBStreams_20120810.<Op>`), served on the
//! node's port next to DynamoDB's; all are reads, GetRecords one that walks the log. The
//! table that routes to them is `wire::OPERATIONS`.

pub(super) mod describe_stream;
pub(super) mod get_records;
pub(super) mod get_shard_iterator;
pub(super) mod list_streams;
