//! DescribeTimeToLive.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;

use super::common::named_table;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeTimeToLiveInput {
    table_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeTimeToLiveOutput {
    time_to_live_description: Description,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Description {
    time_to_live_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribute_name: Option<String>,
}

pub(crate) fn describe_time_to_live(
    engine: &Engine,
    input: DescribeTimeToLiveInput,
) -> Result<DescribeTimeToLiveOutput, ApiError> {
    let table_name = named_table(&engine.store, input.table_name)?;
    let attribute_name = engine.ttl.describe_time_to_live(&table_name)?;
    Ok(DescribeTimeToLiveOutput {
        time_to_live_description: Description {
            time_to_live_status: if attribute_name.is_some() {
                "ENABLED"
            } else {
                "DISABLED"
            },
            attribute_name,
        },
    })
}
