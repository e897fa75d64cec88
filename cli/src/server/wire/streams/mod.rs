//! DynamoDB Streams operations (`X-Amz-Target: DynamoDBStreams_20120810.<Op>`), served on the
//! node's port next to DynamoDB's.

mod describe_stream;
mod get_records;
mod get_shard_iterator;
mod list_streams;

use super::{Execution, Operation, run};

/// The Streams operation named `name`; all are reads, GetRecords one that walks the log.
pub(crate) fn operation(name: &str) -> Option<(Operation, Execution)> {
    Some(match name {
        "ListStreams" => (
            |s, b| run(s, b, list_streams::list_streams),
            Execution::Read,
        ),
        "DescribeStream" => (
            |s, b| run(s, b, describe_stream::describe_stream),
            Execution::Read,
        ),
        "GetShardIterator" => (
            |s, b| run(s, b, get_shard_iterator::get_shard_iterator),
            Execution::Read,
        ),
        "GetRecords" => (|s, b| run(s, b, get_records::get_records), Execution::Walk),
        _ => return None,
    })
}
