//! `GET /metrics` without Kafka or peers: requests, errors and latency per operation, items
//! and bytes per table, stream records read, and the group commit's fsyncs, in Prometheus'
//! text format. (The recorder is the process's, shared by the tests of this binary, so each
//! check names this test's own table or looks for presence.)

use aws_sdk_dynamodb::types::StreamViewType;
use tidemark_tests::TestNode;

use crate::common::{assert_fails_with, create_stream_table, read_stream, s};

#[tokio::test]
async fn metrics_are_always_on() {
    let node = TestNode::start().await;
    let client = node.client();
    let arn = create_stream_table(&client, "metered", StreamViewType::NewImage).await;
    for key in ["a", "b", "c"] {
        client
            .put_item()
            .table_name("metered")
            .item("p", s(key))
            .send()
            .await
            .unwrap();
    }
    assert_fails_with(
        client
            .get_item()
            .table_name("no_such_table")
            .key("p", s("a"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    let records = read_stream(&node.streams_client(), &arn).await;
    assert_eq!(records.len(), 3);

    let text = reqwest::get(format!("{}/metrics", node.endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in:\n{text}"))
    };
    assert!(value("tidemark_requests_total{operation=\"PutItem\"}") >= 3.0);
    assert!(
        value(
            "tidemark_request_errors_total{operation=\"GetItem\",error=\"ResourceNotFoundException\"}"
        ) >= 1.0
    );
    assert!(value("tidemark_request_duration_seconds_count{operation=\"PutItem\"}") >= 3.0);
    assert!(
        text.contains(
            "tidemark_request_duration_seconds_bucket{operation=\"PutItem\",le=\"0.001\"}"
        )
    );
    assert_eq!(value("tidemark_table_items{table=\"metered\"}"), 3.0);
    assert!(value("tidemark_table_bytes{table=\"metered\"}") > 0.0);
    assert_eq!(
        value("tidemark_stream_records_read_total{table=\"metered\"}"),
        3.0
    );
    assert!(value("tidemark_fsync_seconds_count") >= 1.0);
    assert!(value("tidemark_group_commit_changes_count") >= 1.0);
}
