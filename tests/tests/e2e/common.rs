//! Helpers shared by the end-to-end tests.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;

/// A key schema element.
pub(crate) fn key_element(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// An attribute definition.
pub(crate) fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

/// Creates an on-demand table with a string partition key `p` and, optionally, a number sort
/// key `c`.
pub(crate) async fn create_table(client: &Client, name: &str, with_sort_key: bool) {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S));
    if with_sort_key {
        request = request
            .key_schema(key_element("c", KeyType::Range))
            .attribute_definitions(attribute("c", ScalarAttributeType::N));
    }
    request.send().await.expect("create table");
}

pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub(crate) fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The exception name of an SDK error (e.g. `ConditionalCheckFailedException`).
pub(crate) fn error_code<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(e) => e.code().unwrap_or("").to_string(),
        None => format!("not a service error: {error:?}"),
    }
}

/// An item from name/value pairs.
pub(crate) fn item(
    pairs: &[(&str, AttributeValue)],
) -> std::collections::HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Creates a table like [`create_table`] with a stream of `view_type`; returns the stream ARN
/// (checking DescribeTable reports it).
pub(crate) async fn create_stream_table(
    client: &Client,
    name: &str,
    view_type: aws_sdk_dynamodb::types::StreamViewType,
) -> String {
    use aws_sdk_dynamodb::types::StreamSpecification;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view_type.clone())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table with a stream");
    let created = created.table_description.unwrap();
    let arn = created.latest_stream_arn.clone().expect("LatestStreamArn");
    let label = created
        .latest_stream_label
        .clone()
        .expect("LatestStreamLabel");
    assert!(
        arn.ends_with(&format!("/stream/{label}")),
        "{arn} vs {label}"
    );
    let described = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(described.latest_stream_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        described.latest_stream_label.as_deref(),
        Some(label.as_str())
    );
    let spec = described.stream_specification.expect("StreamSpecification");
    assert!(spec.stream_enabled);
    assert_eq!(spec.stream_view_type, Some(view_type));
    arn
}

/// A stream attribute value as a DynamoDB one (the two SDKs have separate types).
pub(crate) fn from_stream(value: &StreamValue) -> AttributeValue {
    match value {
        StreamValue::S(v) => AttributeValue::S(v.clone()),
        StreamValue::N(v) => AttributeValue::N(v.clone()),
        StreamValue::B(v) => AttributeValue::B(v.clone()),
        StreamValue::Bool(v) => AttributeValue::Bool(*v),
        StreamValue::Null(v) => AttributeValue::Null(*v),
        StreamValue::Ss(v) => AttributeValue::Ss(v.clone()),
        StreamValue::Ns(v) => AttributeValue::Ns(v.clone()),
        StreamValue::Bs(v) => AttributeValue::Bs(v.clone()),
        StreamValue::L(v) => AttributeValue::L(v.iter().map(from_stream).collect()),
        StreamValue::M(v) => AttributeValue::M(image(v)),
        other => panic!("unknown stream attribute value {other:?}"),
    }
}

/// A stream image (or key map) as a DynamoDB item.
pub(crate) fn image(
    map: &std::collections::HashMap<String, StreamValue>,
) -> std::collections::HashMap<String, AttributeValue> {
    map.iter()
        .map(|(k, v)| (k.clone(), from_stream(v)))
        .collect()
}

/// Every shard of a stream, following DescribeStream's pages (`page_size` shards each).
pub(crate) async fn all_shards(
    streams: &StreamsClient,
    arn: &str,
    page_size: Option<i32>,
) -> Vec<aws_sdk_dynamodbstreams::types::Shard> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = streams
            .describe_stream()
            .stream_arn(arn)
            .set_limit(page_size)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .expect("describe stream")
            .stream_description
            .unwrap();
        shards.extend(page.shards().iter().cloned());
        match page.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => return shards,
        }
    }
}

/// The records of one shard from TRIM_HORIZON up to now: until GetRecords answers an empty
/// page (open shard) or no NextShardIterator (closed shard, read to its end). Returns the
/// records and whether the shard was read to its end.
pub(crate) async fn read_shard(
    streams: &StreamsClient,
    arn: &str,
    shard_id: &str,
) -> (Vec<aws_sdk_dynamodbstreams::types::Record>, bool) {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("get shard iterator")
        .shard_iterator
        .expect("ShardIterator");
    let mut records = Vec::new();
    for _ in 0..10_000 {
        let page = streams
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .expect("get records");
        let empty = page.records().is_empty();
        records.extend(page.records().iter().cloned());
        match page.next_shard_iterator {
            None => return (records, true),
            Some(_) if empty => return (records, false),
            Some(next) => iterator = next,
        }
    }
    panic!("shard {shard_id} never ends");
}

/// Every record of a stream so far, shard by shard in shard id order (so one key's records
/// come in commit order), each with its shard id.
pub(crate) async fn read_stream(
    streams: &StreamsClient,
    arn: &str,
) -> Vec<(String, aws_sdk_dynamodbstreams::types::Record)> {
    let mut out = Vec::new();
    for shard in all_shards(streams, arn, None).await {
        let id = shard.shard_id.unwrap();
        let (records, _) = read_shard(streams, arn, &id).await;
        out.extend(records.into_iter().map(|r| (id.clone(), r)));
    }
    out
}

/// The string partition key `p` of a stream record.
pub(crate) fn record_key(record: &aws_sdk_dynamodbstreams::types::Record) -> String {
    let keys = record
        .dynamodb
        .as_ref()
        .unwrap()
        .keys
        .as_ref()
        .expect("Keys");
    match keys.get("p") {
        Some(StreamValue::S(p)) => p.clone(),
        other => panic!("no string key p in {other:?}"),
    }
}

/// A record's `eventName` as text.
pub(crate) fn event_name(record: &aws_sdk_dynamodbstreams::types::Record) -> &str {
    record.event_name.as_ref().expect("eventName").as_str()
}

/// The node binary the multi-process tests run.
pub(crate) fn node_binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_tidemark-node"))
}

/// Turns TTL on for `table` with `attribute`.
pub(crate) async fn enable_ttl(client: &Client, table: &str, attribute: &str) {
    use aws_sdk_dynamodb::types::TimeToLiveSpecification;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTimeToLive {table} succeeds: {e:?}"));
}

/// Every cell of `table` in a stopped node's store (`dir`): live items and tombstones, with
/// their stamps, in key order.
pub(crate) fn stored_cells(
    dir: &std::path::Path,
    table: &str,
) -> Vec<tidemark_core::replication::RemoteChange> {
    let store = tidemark_core::Engine::open(tidemark_core::StoreConfig::new(dir))
        .expect("open a stopped node's store");
    let snapshot = store.replication.snapshot_table(table).unwrap();
    let (mut cells, mut after) = (Vec::new(), None);
    loop {
        let page = store
            .replication
            .snapshot_page(&snapshot, after, 10_000, usize::MAX)
            .unwrap();
        cells.extend(page.changes);
        match page.resume_after {
            Some(next) => after = Some(next),
            None => return cells,
        }
    }
}

/// The item with key `p = key` in `table`, read consistently, if it exists (and the node
/// answers).
pub(crate) async fn get_consistent(
    client: &Client,
    table: &str,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("p", s(key))
        .consistent_read(true)
        .send()
        .await
        .ok()?
        .item
}

/// The JSON a node's operator endpoint (`/admin/...`) answers at `url`.
pub(crate) async fn admin_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url} answers JSON: {e}"))
}

/// How long a group of regions may take to form or change.
pub(crate) const GROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Region `i`'s view of `table`'s other replicas, by region, or `None` when DescribeTable
/// fails there.
pub(crate) async fn replicas_in(
    cluster: &tidemark_tests::cluster::Cluster,
    i: usize,
    table: &str,
) -> Option<std::collections::BTreeMap<String, Option<aws_sdk_dynamodb::types::ReplicaStatus>>> {
    let described = cluster
        .client(i, std::time::Duration::from_secs(10))
        .describe_table()
        .table_name(table)
        .send()
        .await
        .ok()?
        .table?;
    Some(
        described
            .replicas()
            .iter()
            .map(|r| {
                (
                    r.region_name().unwrap_or("").to_string(),
                    r.replica_status().cloned(),
                )
            })
            .collect(),
    )
}

/// Waits until every region of `members` describes `table` with exactly the other members'
/// replicas, all ACTIVE.
pub(crate) async fn wait_for_group(
    cluster: &tidemark_tests::cluster::Cluster,
    table: &str,
    members: &[usize],
) {
    wait_for_group_within(cluster, table, members, GROUP_WAIT, false).await;
}

/// Waits up to `within` until every region of `members` describes `table` with exactly the
/// other members' replicas, all ACTIVE, and with `table_active` the table itself ACTIVE too
/// (as the survivors must show it at once after a region's replica is removed).
pub(crate) async fn wait_for_group_within(
    cluster: &tidemark_tests::cluster::Cluster,
    table: &str,
    members: &[usize],
    within: std::time::Duration,
    table_active: bool,
) {
    use aws_sdk_dynamodb::types::{ReplicaStatus, TableStatus};
    let mut last = Vec::new();
    let formed = tidemark_tests::wait_until(within, async || {
        last.clear();
        for &i in members {
            let others: std::collections::BTreeSet<String> = members
                .iter()
                .filter(|&&m| m != i)
                .map(|&m| cluster.region(m).to_string())
                .collect();
            let status = match table_active {
                true => cluster
                    .client(i, std::time::Duration::from_secs(10))
                    .describe_table()
                    .table_name(table)
                    .send()
                    .await
                    .ok()
                    .and_then(|d| d.table?.table_status),
                false => Some(TableStatus::Active),
            };
            let seen = replicas_in(cluster, i, table).await;
            let ok = status == Some(TableStatus::Active)
                && seen.as_ref().is_some_and(|seen| {
                    seen.keys()
                        .cloned()
                        .collect::<std::collections::BTreeSet<_>>()
                        == others
                        && seen.values().all(|s| *s == Some(ReplicaStatus::Active))
                });
            last.push((cluster.region(i).to_string(), status, seen));
            if !ok {
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        formed,
        "expected every region of {members:?} to describe {table} with the other regions' \
         replicas ACTIVE{} within {within:?}; last seen: {last:?}",
        match table_active {
            true => ", and the table ACTIVE",
            false => "",
        }
    );
}

/// A `GlobalSecondaryIndexUpdates` element creating index `name` on string attribute
/// `attribute` (partition key only, every attribute projected).
pub(crate) fn gsi_create(
    name: &str,
    attribute: &str,
) -> aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate {
    use aws_sdk_dynamodb::types::{
        CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, Projection, ProjectionType,
    };
    GlobalSecondaryIndexUpdate::builder()
        .create(
            CreateGlobalSecondaryIndexAction::builder()
                .index_name(name)
                .key_schema(key_element(attribute, KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .build()
}

/// The seed of a randomized test run: `TIDEMARK_SEED`, or a fresh one (printed).
pub(crate) fn seed() -> u64 {
    let seed = std::env::var("TIDEMARK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed}: rerun this run with TIDEMARK_SEED={seed}");
    seed
}

/// An item in a form two scans can compare: its attributes in name order, debug-printed.
pub(crate) fn canonical(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    format!(
        "{:?}",
        item.iter().collect::<std::collections::BTreeMap<_, _>>()
    )
}

/// Every item of `table` (or of its index `index`), canonical and sorted, read page by page.
pub(crate) async fn scan_all(client: &Client, table: &str, index: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        out.extend(page.items().iter().map(canonical));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    out.sort();
    out
}

/// Turns point-in-time recovery on for `table`.
pub(crate) async fn enable_pitr(client: &Client, table: &str) {
    client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable point-in-time recovery");
}

/// Waits until a table being built (restored or imported) shows items: its build started.
pub(crate) async fn build_started(client: &Client, table: &str) -> bool {
    tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let described = client.describe_table().table_name(table).send().await;
        described.is_ok_and(|d| d.table().and_then(|t| t.item_count()).unwrap_or(0) > 0)
    })
    .await
}

/// Asserts that a call failed with the DynamoDB exception `code`.
pub(crate) fn assert_fails_with<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    code: &str,
) where
    T: std::fmt::Debug,
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(answer) => panic!("expected {code}, got an answer: {answer:?}"),
        Err(e) => assert_eq!(error_code(&e), code, "{e:?}"),
    }
}

/// Publishes `table` to `topic` in `format` from the start of its retained history (or from
/// now), through the node's admin API.
pub(crate) async fn publish(
    node: &tidemark_tests::TestNode,
    table: &str,
    topic: &str,
    format: &str,
    from: &str,
) {
    let answer = reqwest::Client::new()
        .post(format!("{}/admin/publish", node.endpoint()))
        .json(
            &serde_json::json!({"TableName": table, "Enabled": true, "Format": format,
                                  "Topic": topic, "Partitions": 3, "From": from}),
        )
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
}

/// Waits until every published table's changes are in Kafka.
pub(crate) async fn published(node: &tidemark_tests::TestNode) {
    let url = format!("{}/admin/publish", node.endpoint());
    let drained = tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let status: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let tables = status["Tables"].as_array().cloned().unwrap_or_default();
        tables.iter().all(|t| t["LagRecords"] == 0)
    })
    .await;
    assert!(drained, "publishing did not catch up");
}

/// Whether a command succeeded, and what it printed (standard output, then error).
pub(crate) fn succeeded_saying(output: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs `tidemark restore --from-kafka` with `args` against `node`; the exit status and
/// output.
pub(crate) async fn restore_command(
    node: &tidemark_tests::TestNode,
    args: Vec<String>,
) -> (bool, String) {
    let endpoint = node.endpoint();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(node_binary())
            .arg("restore")
            .arg("--from-kafka")
            .args(&args)
            .args(["--endpoint", &endpoint])
            .output()
            .expect("run the command");
        succeeded_saying(&output)
    })
    .await
    .unwrap()
}

/// PutItem of `key` with `v = value` into `table`.
pub(crate) async fn put_value(client: &Client, table: &str, key: &str, value: &str) {
    client
        .put_item()
        .table_name(table)
        .item("p", s(key))
        .item("v", s(value))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem {key} into {table} succeeds: {e:?}"));
}

/// Waits, up to 30 s, until region `i` of `cluster` holds `key` in `table` with `v = value`.
pub(crate) async fn wait_for_value(
    cluster: &tidemark_tests::cluster::Cluster,
    i: usize,
    table: &str,
    key: &str,
    value: &str,
) {
    const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
    let client = cluster.client(i, std::time::Duration::from_secs(10));
    let mut last = None;
    let arrived = tidemark_tests::wait_until(WAIT, async || {
        last = get_consistent(&client, table, key).await;
        last.as_ref().and_then(|item| item.get("v")) == Some(&s(value))
    })
    .await;
    assert!(
        arrived,
        "expected item {key} (v = {value}) of {table} to be readable in {} within {WAIT:?}; \
         last read: {last:?}",
        cluster.region(i)
    );
}

/// Creates `table` in region 0 of `cluster`, adds a replica in each of regions 1 and 2 with
/// one ReplicaUpdates call, and waits until all three are ACTIVE everywhere; region 0's
/// client, with operations given `timeout`.
pub(crate) async fn global_in_three(
    cluster: &tidemark_tests::cluster::Cluster,
    table: &str,
    timeout: std::time::Duration,
) -> Client {
    let client = cluster.client(0, timeout);
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(tidemark_tests::cluster::replica_create(cluster.region(1)))
        .replica_updates(tidemark_tests::cluster::replica_create(cluster.region(2)))
        .send()
        .await
        .expect("ReplicaUpdates creating two replicas succeeds");
    wait_for_group(cluster, table, &[0, 1, 2]).await;
    client
}

/// The table's description, as DescribeTable answers.
pub(crate) async fn describe(
    client: &Client,
    table: &str,
) -> aws_sdk_dynamodb::types::TableDescription {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
}
