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

/// A POST of `body` with `X-Amz-Target: target` and `headers`.
async fn post(
    endpoint: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::builder()
        .no_gzip()
        .no_deflate()
        .build()
        .unwrap()
        .post(endpoint)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.unwrap()
}

#[tokio::test]
async fn compressed_requests_and_responses_follow_dynamodb() {
    use std::io::{Read, Write};
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let client = node.client();
    tidemark_tests::load::keyed_table(&client, "zipped")
        .send()
        .await
        .unwrap();
    let gzip = |text: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    let big = "x".repeat(10_000);
    let put =
        format!(r#"{{"TableName":"zipped","Item":{{"p":{{"S":"a"}},"big":{{"S":"{big}"}}}}}}"#);
    // A gzip body of two members, as DynamoDB takes it.
    let (first, second) = put.split_at(20);
    let two_members = [gzip(first), gzip(second)].concat();
    let answer = post(&endpoint, PUT, &[("content-encoding", "gzip")], two_members).await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    // Unknown codings and bodies that do not decode: 500, and nothing is written.
    let put_b = put.replace(r#""S":"a""#, r#""S":"b""#);
    let garbage = post(
        &endpoint,
        PUT,
        &[("content-encoding", "garbage")],
        put_b.clone().into(),
    )
    .await;
    assert_eq!(garbage.status(), 500);
    let mut junk = gzip(&put_b);
    junk.extend_from_slice(b"junk");
    let junk = post(&endpoint, PUT, &[("content-encoding", "gzip")], junk).await;
    assert_eq!(junk.status(), 500);
    let scanned = client.scan().table_name("zipped").send().await.unwrap();
    assert_eq!(scanned.count(), 1);

    // A response over 4 KiB is compressed in the coding DynamoDB picks, without x-amz-crc32.
    let get = r#"{"TableName":"zipped","Key":{"p":{"S":"a"}}}"#;
    let compressed = post(
        &endpoint,
        "DynamoDB_20120810.GetItem",
        &[("accept-encoding", "br, identity, deflate, gzip")],
        get.into(),
    )
    .await;
    assert_eq!(compressed.headers()["content-encoding"], "deflate");
    assert!(!compressed.headers().contains_key("x-amz-crc32"));
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(&compressed.bytes().await.unwrap()[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains(&big));
    // Small answers, and clients that accept no coding DynamoDB uses, get plain bodies.
    let small = post(
        &endpoint,
        "DynamoDB_20120810.ListTables",
        &[("accept-encoding", "gzip")],
        "{}".into(),
    )
    .await;
    assert!(!small.headers().contains_key("content-encoding"));
    let x_gzip = post(
        &endpoint,
        "DynamoDB_20120810.GetItem",
        &[("accept-encoding", "x-gzip, br")],
        get.into(),
    )
    .await;
    assert!(!x_gzip.headers().contains_key("content-encoding"));
    assert!(x_gzip.headers().contains_key("x-amz-crc32"));
}

#[tokio::test]
async fn browsers_get_cors_headers_and_other_clients_none() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let client = reqwest::Client::new();
    let plain = client.post(&endpoint).send().await.unwrap();
    assert!(
        !plain
            .headers()
            .keys()
            .any(|h| h.as_str().starts_with("access-control-")),
        "{:?}",
        plain.headers()
    );
    let from_page = client
        .post(&endpoint)
        .header("origin", "http://example.com")
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(from_page.status(), 200);
    assert_eq!(from_page.headers()["access-control-allow-origin"], "*");
    assert!(
        from_page
            .headers()
            .contains_key("access-control-expose-headers")
    );
    let preflight = client
        .request(reqwest::Method::OPTIONS, &endpoint)
        .header("origin", "http://example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "x-amz-target, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-methods"], "POST");
    assert_eq!(
        headers["access-control-allow-headers"],
        "x-amz-target, content-type"
    );
    assert!(headers.contains_key("access-control-max-age"));
    assert!(headers.contains_key("access-control-expose-headers"));
}

#[tokio::test]
async fn request_lines_and_headers_over_16_kb_are_refused() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let client = reqwest::Client::new();
    let list = |url: String| {
        client
            .post(url)
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .body("{}")
    };
    let fine = list(endpoint.clone())
        .header("header1", "x".repeat(7_000))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
    let headers = list(endpoint.clone())
        .header("header1", "x".repeat(8_192))
        .header("header2", "y".repeat(8_192))
        .send()
        .await
        .unwrap();
    assert_eq!(headers.status(), 400);
    let line = list(format!("{endpoint}/{}", "x".repeat(17_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(line.status(), 400);
}
