//! GetShardIterator.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_streams::reader::{self, IteratorStart};

use crate::server::error::ApiError;
use crate::server::wire::dynamodb::common::required;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetShardIteratorInput {
    stream_arn: Option<String>,
    shard_id: Option<String>,
    shard_iterator_type: Option<String>,
    sequence_number: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetShardIteratorOutput {
    shard_iterator: String,
}

pub(crate) fn get_shard_iterator(
    store: &Store,
    input: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput, ApiError> {
    let arn = required(input.stream_arn, "streamArn")?;
    let shard_id = required(input.shard_id, "shardId")?;
    let kind = required(input.shard_iterator_type, "shardIteratorType")?;
    let start = match (kind.as_str(), input.sequence_number) {
        ("TRIM_HORIZON", None) => IteratorStart::TrimHorizon,
        ("LATEST", None) => IteratorStart::Latest,
        ("AT_SEQUENCE_NUMBER", Some(n)) => IteratorStart::AtSequenceNumber(n),
        ("AFTER_SEQUENCE_NUMBER", Some(n)) => IteratorStart::AfterSequenceNumber(n),
        ("TRIM_HORIZON" | "LATEST", Some(_)) => {
            return Err(ApiError::validation(format!(
                "Invalid SequenceNumber: a SequenceNumber must not be given with ShardIteratorType {kind}"
            )));
        }
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => {
            return Err(ApiError::validation(format!(
                "Invalid SequenceNumber: ShardIteratorType {kind} needs a SequenceNumber"
            )));
        }
        (other, _) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
            )));
        }
    };
    Ok(GetShardIteratorOutput {
        shard_iterator: reader::get_shard_iterator(store, &arn, &shard_id, start)?,
    })
}
