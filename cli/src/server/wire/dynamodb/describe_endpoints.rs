//! DescribeEndpoints: the node is its own endpoint, under the address the client used.

use serde::Serialize;

use crate::server::error::ApiError;

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

/// The answer to DescribeEndpoints sent to `host` (the request's `Host` header).
pub(crate) fn describe_endpoints(host: &str) -> Result<Vec<u8>, ApiError> {
    let output = DescribeEndpointsOutput {
        endpoints: vec![Endpoint {
            address: host.to_string(),
            cache_period_in_minutes: 1440,
        }],
    };
    serde_json::to_vec(&output).map_err(|e| ApiError::internal(e.to_string()))
}
