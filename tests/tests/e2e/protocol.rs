//! The wire protocol: framing headers, error types for malformed input, limits, health.

use tidemark_tests::{TestNode, raw_request};

const PUT: &str = "DynamoDB_20120810.PutItem";

#[tokio::test]
async fn responses_carry_request_id_crc32_and_content_type() {
    let node = TestNode::start().await;
    let response = raw_request(&node.endpoint(), Some("DynamoDB_20120810.ListTables"), "{}").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"TableNames": []}));
    let crc: u32 = response.headers["x-amz-crc32"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(crc, crc32fast::hash(&response.body));
    assert!(!response.headers["x-amzn-requestid"].is_empty());
    assert_eq!(
        response.headers["content-type"],
        "application/x-amz-json-1.0"
    );
}

#[tokio::test]
async fn malformed_requests_get_dynamodb_error_types() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let unknown = raw_request(&endpoint, Some("DynamoDB_20120810.Frobnicate"), "{}").await;
    assert_eq!(
        (unknown.status, unknown.error_name().as_str()),
        (400, "UnknownOperationException")
    );
    let no_target = raw_request(&endpoint, None, "{}").await;
    assert_eq!(no_target.error_name(), "UnknownOperationException");
    let bad_json = raw_request(&endpoint, Some(PUT), "{not json").await;
    assert_eq!(
        (bad_json.status, bad_json.error_name().as_str()),
        (400, "SerializationException")
    );
    let number_not_string = raw_request(
        &endpoint,
        Some(PUT),
        r#"{"TableName":"abc","Item":{"p":{"N":123}}}"#,
    )
    .await;
    assert_eq!(number_not_string.error_name(), "SerializationException");
    let bad_number = raw_request(
        &endpoint,
        Some(PUT),
        r#"{"TableName":"abc","Item":{"p":{"N":"12abc"}}}"#,
    )
    .await;
    assert_eq!(bad_number.error_name(), "ValidationException");
    let full_type = bad_number.json()["__type"].as_str().unwrap().to_string();
    assert_eq!(full_type, "com.amazon.coral.validate#ValidationException");
    assert!(
        bad_number.json()["message"]
            .as_str()
            .unwrap()
            .contains("numeric")
    );
    let missing_table = raw_request(&endpoint, Some(PUT), r#"{"Item":{"p":{"S":"x"}}}"#).await;
    assert_eq!(missing_table.error_name(), "ValidationException");
}

#[tokio::test]
async fn bodies_over_16_mb_are_refused_cleanly() {
    let node = TestNode::start().await;
    let body = format!(
        r#"{{"TableName":"abc","Item":{{"p":{{"S":"{}"}}}}}}"#,
        "x".repeat(17 * 1024 * 1024)
    );
    let response = raw_request(&node.endpoint(), Some(PUT), body).await;
    assert_eq!(response.status, 413);
    // The node keeps serving.
    let after = raw_request(&node.endpoint(), Some("DynamoDB_20120810.ListTables"), "{}").await;
    assert_eq!(after.status, 200);
}

#[tokio::test]
async fn get_slash_answers_health() {
    let node = TestNode::start().await;
    let response = reqwest::get(node.endpoint()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().starts_with("healthy"));
}
