//! DescribeEndpoints: the node is its own endpoint.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;

use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
pub(crate) struct DescribeEndpointsInput {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Endpoint {
    address: String,
    cache_period_in_minutes: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeEndpointsOutput {
    endpoints: Vec<Endpoint>,
}

pub(crate) fn describe_endpoints(
    store: &Store,
    _input: DescribeEndpointsInput,
) -> Result<DescribeEndpointsOutput, ApiError> {
    Ok(DescribeEndpointsOutput {
        endpoints: vec![Endpoint {
            address: format!("dynamodb.{}.amazonaws.com", store.config().region),
            cache_period_in_minutes: 1440,
        }],
    })
}
