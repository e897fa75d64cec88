//! Exports and imports in the layout of DynamoDB's export to S3, through the AWS SDK: an
//! export as of an instant has AWS's files (checked byte by byte: checksums, counts, lines),
//! imports back exactly and round-trips; an export laid out as AWS writes one imports; bad
//! requests get DynamoDB's errors; a node killed during an import finishes it after restart.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::{Blob, DateTime};
use aws_sdk_dynamodb::types::{
    ExportFormat, ExportStatus, ImportStatus, InputCompressionType, InputFormat, KeyType,
    S3BucketSource, ScalarAttributeType, TableCreationParameters,
};
use base64::Engine;
use md5::{Digest, Md5};
use tidemark_tests::{ChildNode, TestNode, client_for, wait_until};

use crate::common::{
    assert_fails_with, attribute, build_started, enable_pitr, error_code, key_element, n,
    node_binary, publish, published, restore_command, s, scan_all,
};
use tidemark_tests::load::batch_load;

type Item = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

async fn create_keyed(client: &Client, table: &str) {
    client
        .create_table()
        .table_name(table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .send()
        .await
        .expect("create table");
    enable_pitr(client, table).await;
}

/// An item with every kind of value.
fn rich_item(i: u32, version: &str) -> Item {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    HashMap::from([
        ("p".to_string(), s(&format!("k{i:05}"))),
        ("version".to_string(), s(version)),
        ("n".to_string(), n(&format!("{i}.5"))),
        ("b".to_string(), V::B(Blob::new(vec![0, 1, 2, i as u8]))),
        ("ss".to_string(), V::Ss(vec!["a".into(), format!("s{i}")])),
        ("ns".to_string(), V::Ns(vec!["1".into(), "-2.25".into()])),
        ("bs".to_string(), V::Bs(vec![Blob::new(b"x".to_vec())])),
        ("bool".to_string(), V::Bool(i.is_multiple_of(2))),
        ("null".to_string(), V::Null(true)),
        (
            "m".to_string(),
            V::M(HashMap::from([(
                "inner".to_string(),
                V::L(vec![n("1"), s("two")]),
            )])),
        ),
    ])
}

async fn put_rich(client: &Client, table: &str, range: std::ops::Range<u32>, version: &str) {
    let (first, version) = (range.start, version.to_string());
    let count = u64::from(range.end - range.start);
    batch_load(client, table, count, 1, move |i| {
        rich_item(first + i as u32, &version)
    })
    .await;
}

/// The table an import creates: keyed by the string `p`, on demand.
fn keyed_by_p(table: &str) -> TableCreationParameters {
    TableCreationParameters::builder()
        .table_name(table)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .build()
        .unwrap()
}

/// ImportTable of the DynamoDB JSON under `bucket`/`prefix` into a new table keyed by `p`,
/// ready to send.
fn import_request(
    client: &Client,
    bucket: &str,
    prefix: &str,
    table: &str,
) -> aws_sdk_dynamodb::operation::import_table::builders::ImportTableFluentBuilder {
    import_request_in(client, bucket, prefix, table, InputFormat::DynamodbJson)
}

/// [`import_request`] of data files in `format`.
fn import_request_in(
    client: &Client,
    bucket: &str,
    prefix: &str,
    table: &str,
    format: InputFormat,
) -> aws_sdk_dynamodb::operation::import_table::builders::ImportTableFluentBuilder {
    client
        .import_table()
        .s3_bucket_source(
            S3BucketSource::builder()
                .s3_bucket(bucket)
                .s3_key_prefix(prefix)
                .build()
                .unwrap(),
        )
        .input_format(format)
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(keyed_by_p(table))
}

async fn export(
    client: &Client,
    table: &str,
    at: Option<DateTime>,
    bucket: &str,
    prefix: &str,
) -> String {
    export_in(
        client,
        table,
        at,
        bucket,
        prefix,
        ExportFormat::DynamodbJson,
    )
    .await
}

/// [`export`] in `format`.
async fn export_in(
    client: &Client,
    table: &str,
    at: Option<DateTime>,
    bucket: &str,
    prefix: &str,
    format: ExportFormat,
) -> String {
    let arn = format!("arn:aws:dynamodb:us-east-1:000000000000:table/{table}");
    let started = client
        .export_table_to_point_in_time()
        .table_arn(arn)
        .set_export_time(at)
        .s3_bucket(bucket)
        .s3_prefix(prefix)
        .export_format(format)
        .send()
        .await
        .expect("export");
    let description = started.export_description().unwrap();
    assert_eq!(description.export_status(), Some(&ExportStatus::InProgress));
    let export_arn = description.export_arn().unwrap().to_string();
    let done = wait_until(Duration::from_secs(60), async || {
        let described = client
            .describe_export()
            .export_arn(&export_arn)
            .send()
            .await
            .unwrap();
        described.export_description().unwrap().export_status() != Some(&ExportStatus::InProgress)
    })
    .await;
    assert!(done, "the export did not finish within a minute");
    export_arn
}

/// DescribeExport's description of `arn`.
async fn described_export(
    client: &Client,
    arn: &str,
) -> aws_sdk_dynamodb::types::ExportDescription {
    let described = client.describe_export().export_arn(arn).send().await;
    described
        .unwrap()
        .export_description()
        .cloned()
        .expect("a description")
}

async fn import(client: &Client, bucket: &str, prefix: &str, table: &str) -> ImportStatus {
    import_in(client, bucket, prefix, table, InputFormat::DynamodbJson).await
}

/// [`import`] of data files in `format`.
async fn import_in(
    client: &Client,
    bucket: &str,
    prefix: &str,
    table: &str,
    format: InputFormat,
) -> ImportStatus {
    let started = import_request_in(client, bucket, prefix, table, format)
        .send()
        .await
        .expect("import");
    let arn = started
        .import_table_description()
        .unwrap()
        .import_arn()
        .unwrap()
        .to_string();
    let mut status = ImportStatus::InProgress;
    let done = wait_until(Duration::from_secs(60), async || {
        let described = client
            .describe_import()
            .import_arn(&arn)
            .send()
            .await
            .unwrap();
        status = described
            .import_table_description()
            .unwrap()
            .import_status()
            .unwrap()
            .clone();
        status != ImportStatus::InProgress
    })
    .await;
    assert!(done, "the import did not finish within a minute");
    status
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

/// The one folder below `parent` (an export id's).
fn only_child(parent: &Path) -> PathBuf {
    let children: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    children.into_iter().next().unwrap()
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[tokio::test]
async fn an_export_has_dynamodbs_layout_and_imports_back_exactly() {
    let node = TestNode::start().await;
    let client = node.client();
    create_keyed(&client, "orders").await;
    put_rich(&client, "orders", 0..300, "first").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let at = DateTime::from(std::time::SystemTime::now());
    let expected = scan_all(&client, "orders", None).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    put_rich(&client, "orders", 200..400, "second").await;

    let export_arn = export(&client, "orders", Some(at), "bucket", "daily/one").await;
    let description = described_export(&client, &export_arn).await;
    assert_eq!(description.export_status(), Some(&ExportStatus::Completed));
    assert_eq!(description.item_count(), Some(300));

    // The files, as DynamoDB lays them out.
    let root = node.data_dir().join("exports").join("bucket");
    let export_dir = only_child(&root.join("daily/one/AWSDynamoDB"));
    let export_id = export_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(export_arn.ends_with(&format!("/export/{export_id}")));
    let (digits, hex) = export_id.split_once('-').unwrap();
    assert!(
        digits.len() == 14 && digits.bytes().all(|b| b.is_ascii_digit()),
        "{export_id}"
    );
    assert!(
        hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{export_id}"
    );
    assert_eq!(
        std::fs::metadata(export_dir.join("_started"))
            .unwrap()
            .len(),
        0
    );
    for manifest in ["manifest-summary", "manifest-files"] {
        let json = std::fs::read(export_dir.join(format!("{manifest}.json"))).unwrap();
        let md5 = std::fs::read_to_string(export_dir.join(format!("{manifest}.md5"))).unwrap();
        assert_eq!(md5, md5_base64(&json), "{manifest}.md5");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export_dir.join("manifest-summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["version"], "2020-06-30");
    assert_eq!(summary["exportArn"], export_arn.as_str());
    assert_eq!(summary["itemCount"], 300);
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");
    assert_eq!(summary["s3Bucket"], "bucket");
    assert_eq!(summary["s3Prefix"], "daily/one");
    assert_eq!(
        summary["manifestFilesS3Key"],
        format!("daily/one/AWSDynamoDB/{export_id}/manifest-files.json").as_str()
    );
    assert_eq!(
        description.export_manifest(),
        Some(format!("daily/one/AWSDynamoDB/{export_id}/manifest-summary.json").as_str())
    );
    let files = std::fs::read_to_string(export_dir.join("manifest-files.json")).unwrap();
    let mut lines_seen = 0;
    for line in files.lines() {
        let file: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = file["dataFileS3Key"].as_str().unwrap();
        assert!(
            key.starts_with(&format!("daily/one/AWSDynamoDB/{export_id}/data/")),
            "{key}"
        );
        let path = root.join(key);
        let name = path.file_name().unwrap().to_str().unwrap();
        let stem = name.strip_suffix(".json.gz").unwrap();
        assert!(
            stem.len() == 26
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
            "{name}"
        );
        assert_eq!(
            file["md5Checksum"],
            md5_base64(&std::fs::read(&path).unwrap()).as_str()
        );
        assert!(file["etag"].as_str().unwrap().ends_with("-1"));
        let text = gunzip(&path);
        assert_eq!(file["itemCount"], text.lines().count());
        for line in text.lines() {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(item["Item"]["p"]["S"].is_string(), "{line}");
            assert!(
                item["Item"]["b"]["B"].is_string(),
                "binary is base64: {line}"
            );
            lines_seen += 1;
        }
    }
    assert_eq!(lines_seen, 300);

    // Imported back, the table is exactly the table as of the instant.
    assert_eq!(
        import(&client, "bucket", "daily/one", "restored").await,
        ImportStatus::Completed
    );
    assert_eq!(scan_all(&client, "restored", None).await, expected);
    // And exported again, it gives the same items.
    enable_pitr(&client, "restored").await;
    export(&client, "restored", None, "bucket", "again").await;
    assert_eq!(
        import(&client, "bucket", "again", "twice").await,
        ImportStatus::Completed
    );
    assert_eq!(scan_all(&client, "twice", None).await, expected);

    let listed = client.list_exports().send().await.unwrap();
    assert_eq!(listed.export_summaries().len(), 2);
    let imports = client.list_imports().send().await.unwrap();
    assert_eq!(imports.import_summary_list().len(), 2);
}

/// Lays out an export the way AWS writes one (shapes copied from real exports), with `lines`
/// in one gzip data file.
fn write_aws_export(bucket_dir: &Path, lines: &[&str]) {
    write_aws_export_in(bucket_dir, lines, "DYNAMODB_JSON");
}

/// [`write_aws_export`] of data in `format` (`DYNAMODB_JSON` or `ION`).
fn write_aws_export_in(bucket_dir: &Path, lines: &[&str], format: &str) {
    let id = "01693467621041-039fcf72";
    let dir = bucket_dir.join("AWSDynamoDB").join(id);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("_started"), b"").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        gz.write_all(line.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    let data = gz.finish().unwrap();
    let extension = if format == "ION" { "ion" } else { "json" };
    let name = format!("jhg6wb6v7u6dxdgwnn4c55ciq4.{extension}.gz");
    std::fs::write(dir.join("data").join(&name), &data).unwrap();
    let files = format!(
        "{{\"itemCount\":{},\"md5Checksum\":\"{}\",\"etag\":\"e11e560d0751aa5933630fb904f5d0df-1\",\"dataFileS3Key\":\"AWSDynamoDB/{id}/data/{name}\"}}\n",
        lines.len(),
        md5_base64(&data)
    );
    std::fs::write(dir.join("manifest-files.json"), &files).unwrap();
    std::fs::write(dir.join("manifest-files.md5"), md5_base64(files.as_bytes())).unwrap();
    let summary = format!(
        "{{\"version\":\"2020-06-30\",\"exportArn\":\"arn:aws:dynamodb:us-east-1:531647909506:table/Airline/export/{id}\",\"startTime\":\"2023-08-31T07:40:21.041Z\",\"endTime\":\"2023-08-31T07:47:46.862Z\",\"tableArn\":\"arn:aws:dynamodb:us-east-1:531647909506:table/Airline\",\"tableId\":\"38148de1-7171-4ea4-85b2-e8b004fe4fe0\",\"exportTime\":\"2023-08-31T07:40:21.041Z\",\"s3Bucket\":\"aws-bucket\",\"s3Prefix\":null,\"s3SseAlgorithm\":\"AES256\",\"s3SseKmsKeyId\":null,\"manifestFilesS3Key\":\"AWSDynamoDB/{id}/manifest-files.json\",\"billedSizeBytes\":0,\"itemCount\":{},\"outputFormat\":\"{format}\"}}",
        lines.len()
    );
    std::fs::write(dir.join("manifest-summary.json"), &summary).unwrap();
    std::fs::write(
        dir.join("manifest-summary.md5"),
        md5_base64(summary.as_bytes()),
    )
    .unwrap();
}

#[tokio::test]
async fn an_export_written_by_aws_imports() {
    let node = TestNode::start().await;
    let client = node.client();
    let bucket = node.data_dir().join("exports").join("aws-bucket");
    write_aws_export(
        &bucket,
        &[
            r#"{"Item":{"p":{"S":"a"},"Passenger ID":{"N":"49010"},"Country Name":{"S":"China"}}}"#,
            r#"{"Item":{"p":{"S":"b"},"bin":{"B":"YmFy"},"set":{"SS":["x","y"]},"nums":{"NS":["1","2.5"]},"bins":{"BS":["YmFy"]}}}"#,
            "",
            r#"{"Item":{"p":{"S":"c"},"m":{"M":{"l":{"L":[{"NULL":true},{"BOOL":false}]}}}}}"#,
        ],
    );
    assert_eq!(
        import(&client, "aws-bucket", "", "airline").await,
        ImportStatus::Completed
    );
    let b = client
        .get_item()
        .table_name("airline")
        .key("p", s("b"))
        .send()
        .await
        .unwrap();
    let item = b.item().unwrap();
    assert_eq!(
        item["bin"],
        aws_sdk_dynamodb::types::AttributeValue::B(Blob::new(b"bar".to_vec()))
    );
    assert_eq!(scan_all(&client, "airline", None).await.len(), 3);

    // A data file with a line that is not an item fails the import; its table goes.
    let broken = node.data_dir().join("exports").join("broken");
    write_aws_export(
        &broken,
        &[r#"{"Item":{"p":{"S":"a"}}}"#, r#"{"NotAnItem":1}"#],
    );
    assert_eq!(
        import(&client, "broken", "", "broken_table").await,
        ImportStatus::Failed
    );
    assert_fails_with(
        client
            .describe_table()
            .table_name("broken_table")
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

#[tokio::test]
async fn ion_exports_import_back_and_aws_ion_exports_import() {
    let node = TestNode::start().await;
    let client = node.client();
    create_keyed(&client, "orders").await;
    put_rich(&client, "orders", 0..250, "first").await;
    let expected = scan_all(&client, "orders", None).await;

    let export_arn = export_in(&client, "orders", None, "ion", "x", ExportFormat::Ion).await;
    let description = described_export(&client, &export_arn).await;
    assert_eq!(description.export_status(), Some(&ExportStatus::Completed));
    assert_eq!(description.export_format(), Some(&ExportFormat::Ion));
    let root = node.data_dir().join("exports").join("ion");
    let export_dir = only_child(&root.join("x/AWSDynamoDB"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export_dir.join("manifest-summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["outputFormat"], "ION");
    let files = std::fs::read_to_string(export_dir.join("manifest-files.json")).unwrap();
    let mut lines_seen = 0;
    for line in files.lines() {
        let file: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = root.join(file["dataFileS3Key"].as_str().unwrap());
        assert!(path.to_str().unwrap().ends_with(".ion.gz"), "{path:?}");
        for line in gunzip(&path).lines() {
            assert!(line.starts_with("$ion_1_0 {Item: {"), "{line}");
            lines_seen += 1;
        }
    }
    assert_eq!(lines_seen, 250);
    assert_eq!(
        import_in(&client, "ion", "x", "from_ion", InputFormat::Ion).await,
        ImportStatus::Completed
    );
    assert_eq!(scan_all(&client, "from_ion", None).await, expected);

    // AWS's own Ion export, its documented example line (with our key added).
    let bucket = node.data_dir().join("exports").join("aws-ion");
    write_aws_export_in(
        &bucket,
        &[
            r#"$ion_1_0 {Item:{p:"a",Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,ProductCategory:"Book",Title:"Book 103 Title"}}"#,
            r#"$ion_1_0 {Item:{p:"b",bin:{{YmFy}},bins:$dynamodb_BS::[{{YmFy}}],nums:$dynamodb_NS::[1.,2.5],m:{l:[null,false]}}}"#,
        ],
        "ION",
    );
    assert_eq!(
        import_in(&client, "aws-ion", "", "books", InputFormat::Ion).await,
        ImportStatus::Completed
    );
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let get = async |key: &str| {
        client
            .get_item()
            .table_name("books")
            .key("p", s(key))
            .send()
            .await
            .unwrap()
            .item()
            .cloned()
            .unwrap()
    };
    let (a, b) = (get("a").await, get("b").await);
    assert_eq!(
        a["Authors"],
        V::Ss(vec!["Author1".into(), "Author2".into()])
    );
    assert_eq!(a["Id"], n("103"));
    assert_eq!(a["PageCount"], n("600"));
    assert_eq!(a["Price"], n("2000"));
    assert_eq!(a["InPublication"], V::Bool(false));
    assert_eq!(a["Dimensions"], s("8.5 x 11.0 x 1.5"));
    assert_eq!(b["bin"], V::B(Blob::new(b"bar".to_vec())));
    assert_eq!(b["bins"], V::Bs(vec![Blob::new(b"bar".to_vec())]));
    assert_eq!(b["nums"], V::Ns(vec!["1".into(), "2.5".into()]));
    assert_eq!(
        b["m"],
        V::M([("l".to_string(), V::L(vec![V::Null(true), V::Bool(false)]))].into())
    );
    assert_eq!(scan_all(&client, "books", None).await.len(), 2);

    // A line that is not an item fails the import, and its table goes.
    let broken = node.data_dir().join("exports").join("broken-ion");
    write_aws_export_in(
        &broken,
        &[r#"$ion_1_0 {Item:{p:"a"}}"#, r#"$ion_1_0 {Other:1}"#],
        "ION",
    );
    assert_eq!(
        import_in(&client, "broken-ion", "", "broken_ion", InputFormat::Ion).await,
        ImportStatus::Failed
    );
    assert_fails_with(
        client
            .describe_table()
            .table_name("broken_ion")
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

#[tokio::test]
async fn export_and_import_calls_answer_dynamodbs_errors() {
    let node = TestNode::start().await;
    let client = node.client();
    let arn = |t: &str| format!("arn:aws:dynamodb:us-east-1:000000000000:table/{t}");
    assert_fails_with(
        client
            .export_table_to_point_in_time()
            .table_arn(arn("nothing"))
            .s3_bucket("bucket")
            .send()
            .await,
        "TableNotFoundException",
    );
    crate::common::create_table(&client, "plain", false).await;
    let no_pitr = client
        .export_table_to_point_in_time()
        .table_arn(arn("plain"))
        .s3_bucket("bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&no_pitr),
        "PointInTimeRecoveryUnavailableException"
    );
    create_keyed(&client, "orders").await;
    assert_fails_with(
        client
            .export_table_to_point_in_time()
            .table_arn(arn("orders"))
            .s3_bucket("bucket")
            .export_time(DateTime::from_secs(1_000_000_000))
            .send()
            .await,
        "InvalidExportTimeException",
    );
    assert_fails_with(
        client
            .export_table_to_point_in_time()
            .table_arn(arn("orders"))
            .s3_bucket("bucket")
            .s3_prefix("../../etc")
            .send()
            .await,
        "ValidationException",
    );
    assert_fails_with(
        client
            .describe_export()
            .export_arn(format!("{}/export/01693467621041-039fcf72", arn("orders")))
            .send()
            .await,
        "ExportNotFoundException",
    );
    assert_fails_with(
        client
            .describe_import()
            .import_arn(format!("{}/import/01693467621041-039fcf72", arn("orders")))
            .send()
            .await,
        "ImportNotFoundException",
    );
    export(&client, "orders", None, "bucket", "p").await;
    assert_fails_with(
        import_request(&client, "bucket", "", "orders").send().await,
        "ResourceInUseException",
    );
    assert_fails_with(
        import_request_in(&client, "bucket", "", "from_csv", InputFormat::Csv)
            .send()
            .await,
        "ValidationException",
    );
}

/// Items the import crash test loads: enough that a slowed import is caught midway.
const CRASH_ITEMS: u32 = 30_000;

#[tokio::test]
async fn a_node_killed_during_an_import_finishes_it_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = ChildNode::start(node_binary(), &data, &[]).await;
    let client = client_for(&child.endpoint());
    create_keyed(&client, "source").await;
    put_rich(&client, "source", 0..CRASH_ITEMS, "crash").await;
    let expected = scan_all(&client, "source", None).await;
    export(&client, "source", None, "bucket", "full").await;
    child.kill().await;

    // Each batch of 5,000 items of the import waits, so the kill lands in the middle.
    let slow = [("FAILPOINTS", "import-load=sleep(400)")];
    let child = ChildNode::start_with_env(node_binary(), &data, &[], &slow).await;
    let client = client_for(&child.endpoint());
    import_request(&client, "bucket", "full", "imported")
        .send()
        .await
        .expect("import");
    assert!(
        build_started(&client, "imported").await,
        "the import never started loading"
    );
    assert_fails_with(
        client
            .get_item()
            .table_name("imported")
            .key("p", s("k00001"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    child.kill().await;

    let child = ChildNode::start(node_binary(), &data, &[]).await;
    let client = client_for(&child.endpoint());
    let finished = wait_until(Duration::from_secs(60), async || {
        let imports = client.list_imports().send().await.unwrap();
        imports
            .import_summary_list()
            .iter()
            .all(|i| i.import_status() == Some(&ImportStatus::Completed))
    })
    .await;
    assert!(finished, "the import did not finish after the restart");
    assert_eq!(scan_all(&client, "imported", None).await, expected);
    child.kill().await;
}

#[tokio::test]
async fn the_export_and_import_commands_follow_their_jobs() {
    let node = TestNode::start().await;
    let client = node.client();
    create_keyed(&client, "orders").await;
    put_rich(&client, "orders", 0..50, "cli").await;
    let expected = scan_all(&client, "orders", None).await;
    let endpoint = node.endpoint();
    let run = move |args: Vec<&'static str>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new(node_binary())
                .args(&args)
                .args(["--endpoint", &endpoint])
                .output()
                .expect("run the command");
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{args:?}: {stdout} {stderr}");
            stdout
        })
    };
    let out = run(vec![
        "export",
        "--table",
        "orders",
        "--out",
        "cli-bucket",
        "--prefix",
        "nightly",
    ])
    .await
    .unwrap();
    assert!(out.contains("exported 50 items of orders"), "{out}");
    let out = run(vec![
        "import",
        "--from",
        "cli-bucket/nightly",
        "--table",
        "copy",
        "--key",
        "p:S",
    ])
    .await
    .unwrap();
    assert!(out.contains("imported 50 items into copy"), "{out}");
    assert_eq!(scan_all(&client, "copy", None).await, expected);

    // The same in Amazon Ion.
    run(vec![
        "export", "--table", "orders", "--out", "cli-ion", "--format", "ion",
    ])
    .await
    .unwrap();
    let out = run(vec![
        "import", "--from", "cli-ion", "--table", "ion_copy", "--key", "p:S", "--format", "ion",
    ])
    .await
    .unwrap();
    assert!(out.contains("imported 50 items into ion_copy"), "{out}");
    assert_eq!(scan_all(&client, "ion_copy", None).await, expected);
}

#[tokio::test]
async fn a_table_restored_from_its_kafka_topic_equals_its_restore_from_the_log() {
    let broker = tidemark_tests::kafka::Broker::start().await;
    let brokers = broker.brokers();
    let node = TestNode::start_with_kafka(brokers.clone()).await;
    let client = node.client();
    let run = std::process::id();
    for format in ["dynamodb", "kds", "debezium-tombstones"] {
        let table = format!("src_{}", format.replace('-', "_"));
        let topic = format!("restore-{format}-{run}");
        create_keyed(&client, &table).await;
        put_rich(&client, &table, 0..120, "one").await;
        publish(&node, &table, &topic, format, "history").await;
        put_rich(&client, &table, 60..150, "two").await;
        for i in 10..20 {
            client
                .delete_item()
                .table_name(&table)
                .key("p", s(&format!("k{i:05}")))
                .send()
                .await
                .unwrap();
        }
        // The instant restored is the last millisecond of a second, and the later writes come
        // in a later second: the `dynamodb` format has second precision.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let at = now / 1000 * 1000 + 999;
        let expected = scan_all(&client, &table, None).await;
        tokio::time::sleep(Duration::from_millis(at + 50 - now)).await;
        put_rich(&client, &table, 0..40, "three").await;
        client
            .delete_item()
            .table_name(&table)
            .key("p", s("k00100"))
            .send()
            .await
            .unwrap();
        published(&node).await;

        let target = format!("from_kafka_{}", format.replace('-', "_"));
        let at_seconds = format!("{}.{:03}", at / 1000, at % 1000);
        let (ok, output) = restore_command(
            &node,
            vec![
                "--topic".into(),
                topic.clone(),
                "--table".into(),
                target.clone(),
                "--source-table".into(),
                table.clone(),
                "--at".into(),
                at_seconds,
                "--brokers".into(),
                brokers.clone(),
            ],
        )
        .await;
        assert!(ok, "{format}: {output}");
        assert_eq!(scan_all(&client, &target, None).await, expected, "{format}");
        let from_log = format!("from_log_{}", format.replace('-', "_"));
        client
            .restore_table_to_point_in_time()
            .source_table_name(&table)
            .target_table_name(&from_log)
            .restore_date_time(DateTime::from_millis(at as i64))
            .send()
            .await
            .unwrap();
        let active = wait_until(Duration::from_secs(30), async || {
            let d = client
                .describe_table()
                .table_name(&from_log)
                .send()
                .await
                .unwrap();
            d.table().unwrap().table_status() == Some(&aws_sdk_dynamodb::types::TableStatus::Active)
        })
        .await;
        assert!(active);
        assert_eq!(
            scan_all(&client, &from_log, None).await,
            scan_all(&client, &target, None).await,
            "{format}: the restore from Kafka equals the restore from the log"
        );
    }

    // A topic published from `now` after writes lacks the start of the table's history, even
    // when only new items are written afterwards.
    create_keyed(&client, "late").await;
    put_rich(&client, "late", 0..20, "before").await;
    let topic = format!("restore-late-{run}");
    publish(&node, "late", &topic, "kds", "now").await;
    put_rich(&client, "late", 20..23, "after").await;
    published(&node).await;
    let args = |table: &str| {
        vec![
            "--topic".to_string(),
            topic.clone(),
            "--table".into(),
            table.into(),
            "--brokers".into(),
            brokers.clone(),
        ]
    };
    let (ok, output) = restore_command(&node, args("late_copy")).await;
    assert!(
        !ok && output.contains("does not hold the table's whole history")
            && output.contains("already held items"),
        "{output}"
    );
    let mut partial = args("late_partial");
    partial.push("--partial".into());
    let (ok, output) = restore_command(&node, partial).await;
    assert!(ok, "{output}");
    assert_eq!(scan_all(&client, "late_partial", None).await.len(), 3);

    // Publishing turned off, the table emptied meanwhile, and publishing turned on again from
    // `now` into the same topic: the latest publishing started on an empty table, so it alone
    // rebuilds the table, and what the earlier one published does not come back.
    create_keyed(&client, "again").await;
    let topic = format!("restore-again-{run}");
    publish(&node, "again", &topic, "kds", "now").await;
    put_rich(&client, "again", 0..5, "first").await;
    published(&node).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/admin/publish", node.endpoint()))
        .json(&serde_json::json!({"TableName": "again", "Enabled": false}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    for i in 0..5 {
        client
            .delete_item()
            .table_name("again")
            .key("p", s(&format!("k{i:05}")))
            .send()
            .await
            .unwrap();
    }
    publish(&node, "again", &topic, "kds", "now").await;
    put_rich(&client, "again", 10..12, "second").await;
    published(&node).await;
    let expected = scan_all(&client, "again", None).await;
    assert_eq!(expected.len(), 2);
    let mut again = args("again_copy");
    again[1] = topic.clone();
    let (ok, output) = restore_command(&node, again).await;
    assert!(ok, "{output}");
    assert_eq!(scan_all(&client, "again_copy", None).await, expected);
}
