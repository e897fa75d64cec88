//! AWS Signature Version 4 authentication: a node with keys takes requests signed with one of
//! them (the AWS SDK's DynamoDB and Streams clients, the operator's commands) and refuses the
//! rest with DynamoDB's errors, applying nothing.

use std::sync::Arc;

use tidemark_cli::server::auth::Credentials;
use tidemark_tests::load::keyed_table;
use tidemark_tests::{TestNode, client_with_key, raw_request};

use crate::common::{assert_fails_with, enable_pitr, node_binary, s, succeeded_saying};

async fn node_with_keys() -> TestNode {
    TestNode::start_configured(
        |config| {
            config.credentials =
                Some(Credentials::parse("tidemark tidemark\nAKIDOTHER other-secret").unwrap());
        },
        Arc::new(tidemark_core::SystemClock),
    )
    .await
}

#[tokio::test]
async fn signed_requests_work_and_the_rest_are_refused_with_dynamodbs_errors() {
    let node = node_with_keys().await;
    let endpoint = node.endpoint();
    let client = node.client();
    keyed_table(&client, "tbl")
        .send()
        .await
        .expect("create table");
    let put = |client: aws_sdk_dynamodb::Client, key: &str| {
        client.put_item().table_name("tbl").item("p", s(key)).send()
    };
    put(client.clone(), "signed").await.expect("a signed put");
    let other = client_with_key(&endpoint, "AKIDOTHER", "other-secret");
    put(other, "other key")
        .await
        .expect("a put signed with the other key");

    let wrong_secret = client_with_key(&endpoint, "tidemark", "not-the-secret");
    assert_fails_with(
        put(wrong_secret, "wrong secret").await,
        "InvalidSignatureException",
    );
    let unknown = client_with_key(&endpoint, "AKIDUNKNOWN", "whatever");
    assert_fails_with(
        put(unknown, "unknown key").await,
        "UnrecognizedClientException",
    );
    // Nothing refused was applied.
    let scanned = client.scan().table_name("tbl").send().await.unwrap();
    assert_eq!(scanned.count(), 2);

    let unsigned = raw_request(&endpoint, Some("DynamoDB_20120810.ListTables"), "{}").await;
    assert_eq!(unsigned.status, 400);
    assert_eq!(unsigned.error_name(), "MissingAuthenticationTokenException");
    let forged = reqwest::Client::new()
        .post(&endpoint)
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-date", "20170101T010101Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=tidemark/20170101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let text = forged.text().await.unwrap();
    assert!(
        text.contains("InvalidSignatureException") && text.contains("Signature expired"),
        "{text}"
    );
    let incomplete = reqwest::Client::new()
        .post(&endpoint)
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("authorization", "AWS4-HMAC-SHA256 Signature=00")
        .body("{}")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        incomplete.contains("IncompleteSignatureException")
            && incomplete.contains("requires 'Credential' parameter"),
        "{incomplete}"
    );

    // DynamoDB Streams' client signs the same way.
    node.streams_client()
        .list_streams()
        .send()
        .await
        .expect("a signed ListStreams");

    // The admin endpoints need a signature too; the health answer and the metrics do not.
    let admin = reqwest::get(format!("{endpoint}/admin/publish"))
        .await
        .unwrap();
    assert_eq!(admin.status(), 400);
    assert!(
        admin
            .text()
            .await
            .unwrap()
            .contains("MissingAuthenticationTokenException")
    );
    assert_eq!(reqwest::get(&endpoint).await.unwrap().status(), 200);
    assert_eq!(
        reqwest::get(format!("{endpoint}/metrics"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_operators_commands_sign_with_the_environments_key() {
    let node = node_with_keys().await;
    let client = node.client();
    keyed_table(&client, "tbl")
        .send()
        .await
        .expect("create table");
    enable_pitr(&client, "tbl").await;
    let endpoint = node.endpoint();
    let run = move |key: Option<(&'static str, &'static str)>, args: Vec<&'static str>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(node_binary());
            command
                .args(&args)
                .args(["--endpoint", &endpoint])
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN");
            if let Some((id, secret)) = key {
                command
                    .env("AWS_ACCESS_KEY_ID", id)
                    .env("AWS_SECRET_ACCESS_KEY", secret);
            }
            let output = command.output().expect("run the command");
            succeeded_saying(&output)
        })
    };
    let key = Some(("tidemark", "tidemark"));
    let (ok, out) = run(key, vec!["ttl-sweep"]).await.unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(key, vec!["export", "--table", "tbl", "--out", "b"])
        .await
        .unwrap();
    assert!(ok && out.contains("exported 0 items of tbl"), "{out}");
    let (ok, out) = run(None, vec!["ttl-sweep"]).await.unwrap();
    assert!(
        !ok && out.contains("MissingAuthenticationTokenException"),
        "{out}"
    );
    let (ok, out) = run(
        Some(("tidemark", "nope")),
        vec!["export", "--table", "tbl", "--out", "b"],
    )
    .await
    .unwrap();
    assert!(!ok && out.contains("InvalidSignatureException"), "{out}");
}

#[tokio::test]
async fn the_aws_cli_works_unchanged_and_fails_with_dynamodbs_error_on_a_wrong_secret() {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v aws"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs the AWS CLI: pip install awscli (scripts/test.sh installs it)"
    );
    let node = node_with_keys().await;
    let endpoint = node.endpoint();
    let aws = move |secret: &'static str, args: &'static [&'static str]| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new("aws")
                .args(["dynamodb"])
                .args(args)
                .args(["--endpoint-url", &endpoint, "--output", "json"])
                .env("AWS_ACCESS_KEY_ID", "tidemark")
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                .env("AWS_MAX_ATTEMPTS", "1")
                .output()
                .expect("run the AWS CLI");
            succeeded_saying(&output)
        })
    };
    let (ok, out) = aws(
        "tidemark",
        &[
            "create-table",
            "--table-name",
            "cli_made",
            "--billing-mode",
            "PAY_PER_REQUEST",
            "--key-schema",
            "AttributeName=id,KeyType=HASH",
            "--attribute-definitions",
            "AttributeName=id,AttributeType=S",
        ],
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = aws("tidemark", &["list-tables"]).await.unwrap();
    assert!(ok && out.contains("cli_made"), "{out}");
    let (ok, out) = aws("wrong", &["list-tables"]).await.unwrap();
    assert!(!ok && out.contains("InvalidSignatureException"), "{out}");
}
