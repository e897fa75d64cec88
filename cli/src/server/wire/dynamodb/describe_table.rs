//! DescribeTable.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;

use super::common::named_table;
use super::table_description::WireTableDescription;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeTableInput {
    table_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeTableOutput {
    table: WireTableDescription,
}

pub(crate) fn describe_table(
    store: &Store,
    input: DescribeTableInput,
) -> Result<DescribeTableOutput, ApiError> {
    let name = named_table(store, input.table_name)?;
    Ok(DescribeTableOutput {
        table: WireTableDescription::describe(store, &name)?,
    })
}
