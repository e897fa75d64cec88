//! ListStreams.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_streams::reader;

use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamsInput {
    table_name: Option<String>,
    limit: Option<i64>,
    exclusive_start_stream_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamsOutput {
    streams: Vec<StreamOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_stream_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamOutput {
    stream_arn: String,
    table_name: String,
    stream_label: String,
}

pub(crate) fn list_streams(
    store: &Store,
    input: ListStreamsInput,
) -> Result<ListStreamsOutput, ApiError> {
    let page = reader::list_streams(
        store,
        input.table_name.as_deref(),
        input.limit,
        input.exclusive_start_stream_arn.as_deref(),
    )?;
    Ok(ListStreamsOutput {
        streams: page
            .streams
            .into_iter()
            .map(|s| StreamOutput {
                stream_arn: s.stream_arn,
                table_name: s.table_name,
                stream_label: s.stream_label,
            })
            .collect(),
        last_evaluated_stream_arn: page.last_evaluated_stream_arn,
    })
}
