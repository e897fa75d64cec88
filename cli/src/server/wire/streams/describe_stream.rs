//! DescribeStream.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::KeySchemaElement;
use tidemark_streams::{reader, shard};

use crate::server::error::ApiError;
use crate::server::wire::dynamodb::common::required;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamInput {
    stream_arn: Option<String>,
    limit: Option<i64>,
    exclusive_start_shard_id: Option<String>,
    shard_filter: Option<ShardFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ShardFilter {
    #[serde(rename = "Type")]
    kind: Option<String>,
    shard_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamOutput {
    stream_description: StreamDescriptionOutput,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDescriptionOutput {
    stream_arn: String,
    stream_label: String,
    stream_status: &'static str,
    stream_view_type: String,
    creation_request_date_time: f64,
    table_name: String,
    key_schema: Vec<KeySchemaElement>,
    shards: Vec<ShardOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_shard_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ShardOutput {
    shard_id: String,
    sequence_number_range: SequenceNumberRange,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_shard_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SequenceNumberRange {
    starting_sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending_sequence_number: Option<String>,
}

pub(crate) fn describe_stream(
    store: &Store,
    input: DescribeStreamInput,
) -> Result<DescribeStreamOutput, ApiError> {
    let arn = required(input.stream_arn, "streamArn")?;
    let children_of = match input.shard_filter {
        None => None,
        Some(filter) => {
            match filter.kind.as_deref() {
                Some("CHILD_SHARDS") => {}
                Some(other) => {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{other}' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [CHILD_SHARDS]"
                    )));
                }
                None => {
                    return Err(ApiError::validation(
                        "1 validation error detected: Value null at 'shardFilter.type' failed to satisfy constraint: Member must not be null",
                    ));
                }
            }
            let id = filter.shard_id.filter(|id| shard::is_shard_id(id)).ok_or_else(|| {
                ApiError::validation(
                    "Invalid ShardFilter.ShardId: a CHILD_SHARDS filter needs the id of a shard",
                )
            })?;
            Some(id)
        }
    };
    let description = reader::describe_stream(
        store,
        &arn,
        input.limit,
        input.exclusive_start_shard_id.as_deref(),
        children_of.as_deref(),
    )?;
    Ok(DescribeStreamOutput {
        stream_description: StreamDescriptionOutput {
            stream_arn: description.stream_arn,
            stream_label: description.stream_label,
            stream_status: description.stream_status,
            stream_view_type: description.stream_view_type,
            creation_request_date_time: description.creation_request_date_time,
            table_name: description.table_name,
            key_schema: description.key_schema,
            shards: description
                .shards
                .into_iter()
                .map(|s| ShardOutput {
                    shard_id: s.shard_id,
                    sequence_number_range: SequenceNumberRange {
                        starting_sequence_number: s.starting_sequence_number,
                        ending_sequence_number: s.ending_sequence_number,
                    },
                    parent_shard_id: s.parent_shard_id,
                })
                .collect(),
            last_evaluated_shard_id: description.last_evaluated_shard_id,
        },
    })
}
