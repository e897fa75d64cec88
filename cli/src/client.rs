//! Requests of the operator's commands to a running node, signed with AWS Signature Version 4
//! when the environment holds a key, as the AWS CLI reads it (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; region `AWS_REGION` or
//! `AWS_DEFAULT_REGION`, else `us-east-1`), so they work against a node with `--credentials`;
//! and the DynamoDB and DynamoDB Streams calls they make with them.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use serde_json::Value;

use crate::NodeError;

/// The environment's key, if it has one: key id, secret, session token.
fn environment_key() -> Option<(String, String, Option<String>)> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
    Some((key, secret, std::env::var("AWS_SESSION_TOKEN").ok()))
}

fn region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into())
}

/// Sends `body` to `url` with `headers`, signed when the environment has a key.
///
/// # Errors
/// A message when the request cannot be signed or sent.
pub(crate) async fn send(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<reqwest::Response, String> {
    // One client for the process, so a tail's polls and a restore's batches reuse connections.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let mut request = CLIENT
        .get_or_init(reqwest::Client::new)
        .request(method.clone(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some((key, secret, token)) = environment_key() {
        let identity =
            aws_credential_types::Credentials::new(key, secret, token, None, "environment").into();
        let region = region();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name("dynamodb")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing the request: {e}"))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| format!("signing the request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing the request: {e}"))?
            .into_parts();
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
    }
    request.body(body).send().await.map_err(|e| e.to_string())
}

/// The DynamoDB API's target prefix.
const DYNAMODB: &str = "DynamoDB_20120810";
/// DynamoDB Streams'.
const STREAMS: &str = "DynamoDBStreams_20120810";

/// Calls the DynamoDB operation `operation` on the node and returns its answer.
///
/// # Errors
/// Config with the node's error type and message, or why it could not be reached.
pub(crate) async fn call(endpoint: &str, operation: &str, body: Value) -> Result<Value, NodeError> {
    call_api(endpoint, DYNAMODB, operation, body).await
}

/// Calls the DynamoDB Streams operation `operation` on the node.
///
/// # Errors
/// As [`call`].
pub(crate) async fn call_streams(
    endpoint: &str,
    operation: &str,
    body: Value,
) -> Result<Value, NodeError> {
    call_api(endpoint, STREAMS, operation, body).await
}

async fn call_api(
    endpoint: &str,
    api: &str,
    operation: &str,
    body: Value,
) -> Result<Value, NodeError> {
    let target = format!("{api}.{operation}");
    let response = send(
        reqwest::Method::POST,
        endpoint,
        &[
            ("x-amz-target", &target),
            ("content-type", "application/x-amz-json-1.0"),
        ],
        body.to_string().into_bytes(),
    )
    .await
    .map_err(|e| NodeError::Config(format!("cannot reach the node at {endpoint}: {e}")))?;
    let ok = response.status().is_success();
    let body = response
        .text()
        .await
        .map_err(|e| NodeError::Config(format!("reading the node's answer: {e}")))?;
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    match ok {
        true => Ok(answer),
        false => Err(NodeError::Config(format!(
            "{operation} failed: {} {}",
            text(&answer, "/__type"),
            text(&answer, "/message")
        ))),
    }
}

/// The string at `pointer` in `value` (empty when absent).
pub(crate) fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}
