//! HTTPS: a node with `--tls-cert` / `--tls-key` serves the AWS SDK over TLS, and answers a plain
//! HTTP request on its port with DynamoDB's 400.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls;
use tidemark_cli::server::tls::TlsFiles;
use tidemark_tests::TestNode;
use tidemark_tests::load::keyed_table;

use crate::common::s;

#[tokio::test]
async fn the_sdk_talks_to_a_node_over_https_and_plain_http_gets_a_clean_400() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, certified.cert.pem()).unwrap();
    std::fs::write(&files.key, certified.key_pair.serialize_pem()).unwrap();
    let node = TestNode::start_configured(
        |config| config.tls = Some(files),
        Arc::new(tidemark_core::SystemClock),
    )
    .await;
    let port = node.node().local_addr().port();

    let trust = tls::TrustStore::empty().with_pem_certificate(certified.cert.pem().into_bytes());
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("https://localhost:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "tests"))
        .http_client(http_client)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    keyed_table(&client, "secure")
        .send()
        .await
        .expect("create table over https");
    client
        .put_item()
        .table_name("secure")
        .item("p", s("a"))
        .send()
        .await
        .expect("put over https");
    let got = client
        .get_item()
        .table_name("secure")
        .key("p", s("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["p"], s("a"));

    // Plain HTTP to the HTTPS port: DynamoDB's clean 400, not a broken handshake.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert_eq!(
        plain.text().await.unwrap(),
        "The plain HTTP request was sent to HTTPS port"
    );
}
