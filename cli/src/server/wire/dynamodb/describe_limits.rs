//! DescribeLimits: DynamoDB's default account and table capacity limits.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;

use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
pub(crate) struct DescribeLimitsInput {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeLimitsOutput {
    account_max_read_capacity_units: i64,
    account_max_write_capacity_units: i64,
    table_max_read_capacity_units: i64,
    table_max_write_capacity_units: i64,
}

pub(crate) fn describe_limits(
    _store: &Store,
    _input: DescribeLimitsInput,
) -> Result<DescribeLimitsOutput, ApiError> {
    Ok(DescribeLimitsOutput {
        account_max_read_capacity_units: 80_000,
        account_max_write_capacity_units: 80_000,
        table_max_read_capacity_units: 40_000,
        table_max_write_capacity_units: 40_000,
    })
}
