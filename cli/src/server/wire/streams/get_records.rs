//! GetRecords.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_streams::reader;
use tidemark_streams::record::StreamRecord;

use crate::server::error::ApiError;
use crate::server::wire::dynamodb::common::required;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetRecordsInput {
    shard_iterator: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetRecordsOutput {
    records: Vec<StreamRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_shard_iterator: Option<String>,
}

pub(crate) fn get_records(
    store: &Store,
    input: GetRecordsInput,
) -> Result<GetRecordsOutput, ApiError> {
    let iterator = required(input.shard_iterator, "shardIterator")?;
    let page = reader::get_records(store, &iterator, input.limit)?;
    Ok(GetRecordsOutput {
        records: page.records,
        next_shard_iterator: page.next_shard_iterator,
    })
}
