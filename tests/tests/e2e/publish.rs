//! Publishing to Kafka against a real broker (tansu, or `KAFKA_BROKERS`): every change once,
//! in order per item, in each value format, also across a node restart and when publishing
//! starts on a table that already has data.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tidemark_tests::kafka::Broker;
use tidemark_tests::{TestNode, wait_until};

use crate::common::{create_table, n, s};

/// One consumed message.
#[derive(Debug, Clone)]
struct Consumed {
    partition: i32,
    key: String,
    sequence: u64,
    event_name: String,
    value: Option<Value>,
}

/// Reads every message of `topic` (all partitions, from the start) until `expected`
/// non-tombstone messages arrived and the topic went quiet, or 30 s passed.
fn consume(brokers: &str, topic: &str, expected: usize) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tidemark-tests")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Past the expected count, read on until the topic is quiet for a second: a message too
    // many (a duplicate, a trailing tombstone) must be seen.
    let mut quiet_since = None;
    while std::time::Instant::now() < deadline {
        let values = out.iter().filter(|m: &&Consumed| m.value.is_some()).count();
        if values >= expected
            && quiet_since.is_some_and(|t: std::time::Instant| t.elapsed() > Duration::from_secs(1))
        {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            quiet_since.get_or_insert_with(std::time::Instant::now);
            continue;
        };
        quiet_since = None;
        // librdkafka reports connection trouble (e.g. AllBrokersDown right after a broker
        // restart) as consumer errors; it reconnects by itself.
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                eprintln!("consumer: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
                .unwrap_or_else(|| panic!("header {name} missing"))
        };
        out.push(Consumed {
            partition: message.partition(),
            key: String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
            sequence: header("tidemark.sequence").parse().unwrap(),
            event_name: header("tidemark.event_name"),
            value: message
                .payload()
                .map(|p| serde_json::from_slice(p).unwrap()),
        });
    }
    out
}

async fn admin(node: &TestNode, body: Value) -> Value {
    admin_at(&node.endpoint(), body).await
}

async fn admin_at(endpoint: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/admin/publish"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{body} -> {status} {answer}");
    answer
}

async fn status(endpoint: &str) -> Value {
    reqwest::get(format!("{endpoint}/admin/publish"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits up to 10 s for the status to list `tables` published tables, none of them behind.
async fn assert_lag_drains(endpoint: &str, tables: usize) {
    let drained = wait_until(Duration::from_secs(10), async || {
        let status = status(endpoint).await;
        let listed = status["Tables"].as_array().cloned().unwrap_or_default();
        listed.len() == tables && listed.iter().all(|t| t["LagRecords"] == 0)
    })
    .await;
    assert!(drained, "{}", status(endpoint).await);
}

/// The node's `/metrics` once `ready` holds of them, or after 5 s.
async fn metrics_until(node: &TestNode, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = reqwest::get(format!("{}/metrics", node.endpoint()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if ready(&metrics) || std::time::Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every sequence once, and each key's messages in sequence order on one partition.
fn check_exactly_once_in_order(messages: &[Consumed]) {
    let mut seen = std::collections::BTreeSet::new();
    let mut per_key: BTreeMap<&str, Vec<(u64, i32)>> = BTreeMap::new();
    for m in messages.iter().filter(|m| m.value.is_some()) {
        assert!(seen.insert(m.sequence), "sequence {} twice", m.sequence);
        per_key
            .entry(m.key.as_str())
            .or_default()
            .push((m.sequence, m.partition));
    }
    for (key, entries) in per_key {
        assert!(
            entries
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 == w[1].1),
            "{key}: {entries:?}"
        );
    }
}

async fn write_load(node: &TestNode, table: &str, round: u32) -> usize {
    let client = node.client();
    let mut changes = 0;
    for i in 0..10 {
        client
            .put_item()
            .table_name(table)
            .item("p", s(&format!("k{i}")))
            .item("round", n(&round.to_string()))
            .send()
            .await
            .unwrap();
        changes += 1;
    }
    for i in 0..3 {
        client
            .delete_item()
            .table_name(table)
            .key("p", s(&format!("k{i}")))
            .send()
            .await
            .unwrap();
        changes += 1;
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_published_once_in_order_in_each_format() {
    let broker = Broker::start().await;
    let mut node = TestNode::start_with_kafka(broker.brokers()).await;
    let client = node.client();
    let suffix = std::process::id();
    let formats = ["dynamodb", "kds", "debezium-tombstones"];
    let mut topics = Vec::new();
    for format in formats {
        let table = format!("pub_{}", format.replace('-', "_"));
        create_table(&client, &table, false).await;
        // Data from before publishing was turned on: published from the retained history.
        client
            .put_item()
            .table_name(&table)
            .item("p", s("before"))
            .item("v", AttributeValue::Bool(true))
            .send()
            .await
            .unwrap();
        let topic = format!("tidemark-test-{format}-{suffix}");
        let answer = admin(
            &node,
            json!({"TableName": table, "Enabled": true, "Format": format, "Topic": topic,
                   "Partitions": 3, "From": "history"}),
        )
        .await;
        assert_eq!(answer["Topic"], topic.as_str());
        topics.push((table, topic, format));
    }

    let mut expected = vec![1usize; formats.len()];
    for (i, (table, _, _)) in topics.iter().enumerate() {
        expected[i] += write_load(&node, table, 1).await;
    }
    // A clean restart in the middle: publishing resumes from the topic, repeating nothing.
    node.restart().await;
    for (i, (table, _, _)) in topics.iter().enumerate() {
        expected[i] += write_load(&node, table, 2).await;
    }

    for (i, (_, topic, format)) in topics.iter().enumerate() {
        let messages = consume(&broker.brokers(), topic, expected[i]);
        let values: Vec<&Consumed> = messages.iter().filter(|m| m.value.is_some()).collect();
        assert_eq!(values.len(), expected[i], "{format}: {messages:?}");
        check_exactly_once_in_order(&messages);
        for m in &values {
            let v = m.value.as_ref().unwrap();
            match *format {
                "dynamodb" => {
                    assert_eq!(v["eventName"], m.event_name.as_str());
                    assert!(v["tableName"].is_string());
                    assert!(v["dynamodb"]["Keys"]["p"]["S"].is_string());
                }
                "kds" => {
                    assert_eq!(v["recordFormat"], "application/json");
                    assert_eq!(v["eventID"].as_str().unwrap().len(), 36);
                }
                _ => {
                    let op = match m.event_name.as_str() {
                        "INSERT" => "c",
                        "MODIFY" => "u",
                        _ => "d",
                    };
                    assert_eq!(v["op"], op);
                    assert_eq!(v["source"]["sequence"], m.sequence);
                }
            }
        }
        if *format == "debezium-tombstones" {
            let deletes = values.iter().filter(|m| m.event_name == "REMOVE").count();
            let tombstones = messages.iter().filter(|m| m.value.is_none()).count();
            assert_eq!(tombstones, deletes, "one tombstone per delete");
        }
    }

    // The lag drains to zero and the status names every table.
    assert_lag_drains(&node.endpoint(), formats.len()).await;

    // The operator CLI: status shows the tables, disable persists across a restart.
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark-node"))
            .args(args)
            .args(["--endpoint", &node.endpoint()])
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let listed = cli(&["publish", "status", "--json"]);
    assert_eq!(listed["Tables"].as_array().unwrap().len(), formats.len());
    // For people: a table, a line per published table.
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark-node"))
        .args(["publish", "status", "--endpoint", &node.endpoint()])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("TABLE "), "{table}");
    for (name, topic, _) in &topics {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(topic)),
            "{name} in {table}"
        );
    }
    let disabled = cli(&["publish", "disable", "--table", &topics[0].0]);
    assert_eq!(disabled["Enabled"], false);
    node.restart().await;
    assert_eq!(
        status(&node.endpoint()).await["Tables"]
            .as_array()
            .unwrap()
            .len(),
        formats.len() - 1
    );

    // Enabled again from history onto the topic that already holds it: nothing is produced
    // twice, and the changes found in the topic count as published, so the lag drains.
    let (table, topic, format) = &topics[0];
    admin(
        &node,
        json!({"TableName": table, "Enabled": true, "Format": format, "Topic": topic,
               "Partitions": 3, "From": "history"}),
    )
    .await;
    assert_lag_drains(&node.endpoint(), formats.len()).await;
    let messages = consume(&broker.brokers(), topic, expected[0]);
    assert_eq!(messages.len(), expected[0], "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_survives_a_broker_restart_mid_load() {
    let mut broker = Broker::start().await;
    assert!(
        broker.is_local(),
        "this scenario restarts the broker: run it with tansu, without KAFKA_BROKERS"
    );
    // librdkafka's own retries carry the publisher over the outage. (Outages past
    // `message.timeout.ms` are not exercised here: see "tansu 0.6.0" in
    // docs/compatibility.md.)
    let kafka = tidemark_kafka::KafkaSettings::new(broker.brokers());
    let node = TestNode::start_configured(
        move |config| {
            config.kafka = Some(kafka);
            config.publish_lag_warn_records = 10;
            config.publish_lag_report_period = Duration::from_millis(200);
        },
        std::sync::Arc::new(tidemark_core::SystemClock),
    )
    .await;
    let client = node.client();
    create_table(&client, "restarting", false).await;
    let topic = format!("tidemark-test-restart-{}", std::process::id());
    admin(
        &node,
        json!({"TableName": "restarting", "Enabled": true, "Topic": topic}),
    )
    .await;

    let writes = 300;
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..writes {
                client
                    .put_item()
                    .table_name("restarting")
                    .item("p", s(&format!("k{}", i % 17)))
                    .item("i", n(&i.to_string()))
                    .send()
                    .await
                    .expect("writes succeed while the broker is down");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Stopped mid-load once the topic exists and holds the first changes: tansu 0.6.0 killed
    // while it creates a topic can come back with the topic but not all its partitions, and
    // then panics on every produce to them.
    let publishing = wait_until(Duration::from_secs(10), async || {
        !status(&node.endpoint()).await["Tables"][0]["PublishedThrough"].is_null()
    })
    .await;
    assert!(publishing, "{}", status(&node.endpoint()).await);
    broker.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lagging = status(&node.endpoint()).await;
    assert!(
        lagging["Tables"][0]["LagRecords"].as_u64() > Some(0),
        "the lag shows while the broker is down: {lagging}"
    );
    let over_bound = r#"tidemark_publish_lag_over_bound{table="restarting"} 1"#;
    let metrics = metrics_until(&node, |m| m.contains(over_bound)).await;
    assert!(metrics.contains(over_bound), "{metrics}");
    broker.restart().await;
    writer.await.unwrap();

    let messages = consume(&broker.brokers(), &topic, writes);
    assert_eq!(
        messages.len(),
        writes,
        "every write once (status while the broker was down: {lagging})"
    );
    check_exactly_once_in_order(&messages);
    let per_key_values: BTreeMap<&str, Vec<i64>> =
        messages.iter().fold(BTreeMap::new(), |mut acc, m| {
            let v = m.value.as_ref().unwrap();
            let i = v["dynamodb"]["NewImage"]["i"]["N"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            acc.entry(m.key.as_str()).or_default().push(i);
            acc
        });
    for (key, values) in per_key_values {
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{key}: {values:?}");
    }
    let caught_up = r#"tidemark_publish_lag_records{table="restarting"} 0"#;
    let metrics = metrics_until(&node, |m| m.contains(caught_up)).await;
    assert!(metrics.contains(caught_up), "{metrics}");
}

/// Writes `p = k<i % 13>, i = i` until the node dies; returns the acknowledged `(key, i)`.
async fn write_until_dead(client: aws_sdk_dynamodb::Client, writer: usize) -> Vec<(String, i64)> {
    let mut acked = Vec::new();
    for i in 0.. {
        let i = i * 4 + writer as i64;
        let key = format!("k{}", i % 13);
        let sent = client
            .put_item()
            .table_name("killed")
            .item("p", s(&key))
            .item("i", n(&i.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => acked.push((key, i)),
            Err(_) => return acked,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_after_sigkill_loses_and_repeats_nothing() {
    use std::path::Path;
    use tidemark_tests::{ChildNode, client_for, streams_client_for};

    let broker = Broker::start().await;
    let binary = Path::new(env!("CARGO_BIN_EXE_tidemark-node"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let brokers = broker.brokers();
    let args = [
        "--kafka-brokers",
        brokers.as_str(),
        "--durability",
        "buffer",
    ];
    let child = ChildNode::start(binary, &data, &args).await;
    let endpoint = child.endpoint();
    let client = client_for(&endpoint);
    create_table(&client, "killed", false).await;
    // A stream on the same table lists exactly what the change log holds.
    client
        .update_table()
        .table_name("killed")
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::KeysOnly)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let topic = format!("tidemark-test-kill-{}", std::process::id());
    admin_at(
        &endpoint,
        json!({"TableName": "killed", "Enabled": true, "Topic": topic}),
    )
    .await;

    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(write_until_dead(client_for(&endpoint), w)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().await;
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    assert!(acked.len() > 50, "the load ran ({} writes)", acked.len());

    let child = ChildNode::start(binary, &data, &args).await;
    let endpoint = child.endpoint();
    let streams = streams_client_for(&endpoint);
    let arn = client_for(&endpoint)
        .describe_table()
        .table_name("killed")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .unwrap();
    let logged: std::collections::BTreeSet<u64> = crate::common::read_stream(&streams, &arn)
        .await
        .iter()
        .map(|(_, r)| {
            let number: u128 = r
                .dynamodb
                .as_ref()
                .unwrap()
                .sequence_number
                .as_ref()
                .unwrap()
                .parse()
                .unwrap();
            (number - 100_000_000_000_000_000_000) as u64
        })
        .collect();
    assert!(
        logged.len() >= acked.len(),
        "every acknowledged write is logged"
    );

    let messages = consume(&broker.brokers(), &topic, logged.len());
    check_exactly_once_in_order(&messages);
    let published: std::collections::BTreeSet<u64> = messages.iter().map(|m| m.sequence).collect();
    assert_eq!(
        published, logged,
        "the topic holds exactly the change log: nothing lost, nothing repeated, nothing invented"
    );
    let published_writes: std::collections::BTreeSet<(String, i64)> = messages
        .iter()
        .map(|m| {
            let v = m.value.as_ref().unwrap();
            let key = v["dynamodb"]["Keys"]["p"]["S"]
                .as_str()
                .unwrap()
                .to_string();
            let i = v["dynamodb"]["NewImage"]["i"]["N"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (key, i)
        })
        .collect();
    for write in &acked {
        assert!(
            published_writes.contains(write),
            "{write:?} was acknowledged but not published"
        );
    }
    // Changes found already in the topic count as published: the lag drains to zero without
    // further writes, though the checkpoint died with the node.
    assert_lag_drains(&endpoint, 1).await;
    child.kill().await;
}

/// DynamoDB's Kinesis streaming destination calls, through the AWS SDK, turn a table's
/// publishing on and off in the `kds` format, onto the topic the stream ARN names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kinesis_destination_calls_drive_publishing() {
    use aws_sdk_dynamodb::types::{
        ApproximateCreationDateTimePrecision as Precision, DestinationStatus,
        EnableKinesisStreamingConfiguration, UpdateKinesisStreamingConfiguration,
    };
    use tidemark_tests::raw_request;

    let broker = Broker::start().await;
    let node = TestNode::start_with_kafka(broker.brokers()).await;
    let client = node.client();
    create_table(&client, "kinesis", false).await;
    let topic = format!("kinesis-dest-{}", std::process::id());
    let arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{topic}");

    let destinations = async || {
        let described = client.describe_kinesis_streaming_destination();
        let described = described.table_name("kinesis").send().await.unwrap();
        described.kinesis_data_stream_destinations().to_vec()
    };
    assert_eq!(destinations().await, []);

    // Every violation of a request is reported at once, in DynamoDB's words.
    let refused = raw_request(
        &node.endpoint(),
        Some("DynamoDB_20120810.EnableKinesisStreamingDestination"),
        json!({"StreamArn": "arn:short",
               "EnableKinesisStreamingConfiguration":
                   {"ApproximateCreationDateTimePrecision": "SECOND"}})
        .to_string(),
    )
    .await;
    assert_eq!(refused.error_name(), "ValidationException");
    assert_eq!(
        refused.json()["message"],
        "3 validation errors detected: Value null at 'tableName' failed to satisfy constraint: \
         Member must not be null; Value 'arn:short' at 'streamArn' failed to satisfy constraint: \
         Member must have length greater than or equal to 37; Value 'SECOND' at \
         'enableKinesisStreamingConfiguration.approximateCreationDateTimePrecision' failed to \
         satisfy constraint: Member must satisfy enum value set: [MICROSECOND, MILLISECOND]"
    );
    let missing = client
        .enable_kinesis_streaming_destination()
        .table_name("no_such_table")
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing.into_service_error().meta().code(),
        Some("ResourceNotFoundException")
    );

    let enabled = client
        .enable_kinesis_streaming_destination()
        .table_name("kinesis")
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        enabled.destination_status(),
        Some(&DestinationStatus::Enabling)
    );
    let listed = destinations().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].stream_arn(), Some(arn.as_str()));
    assert_eq!(
        listed[0].destination_status(),
        Some(&DestinationStatus::Active)
    );
    assert_eq!(
        listed[0].approximate_creation_date_time_precision(),
        Some(&Precision::Millisecond)
    );
    // One destination per table, as in DynamoDB.
    let second = client
        .enable_kinesis_streaming_destination()
        .table_name("kinesis")
        .stream_arn(format!("{arn}-other"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        second.into_service_error().meta().code(),
        Some("ValidationException")
    );
    // The operator's view agrees: the table publishes in the kds format to the ARN's topic.
    let published = status(&node.endpoint()).await;
    assert_eq!(published["Tables"][0]["Topic"], topic.as_str());
    assert_eq!(published["Tables"][0]["Format"], "kds");

    client
        .put_item()
        .table_name("kinesis")
        .item("p", s("a"))
        .item("v", n("1"))
        .send()
        .await
        .unwrap();
    let updated = client
        .update_kinesis_streaming_destination()
        .table_name("kinesis")
        .stream_arn(&arn)
        .update_kinesis_streaming_configuration(
            UpdateKinesisStreamingConfiguration::builder()
                .approximate_creation_date_time_precision(Precision::Microsecond)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        updated.destination_status(),
        Some(&DestinationStatus::Updating)
    );
    client
        .put_item()
        .table_name("kinesis")
        .item("p", s("b"))
        .item("v", n("2"))
        .send()
        .await
        .unwrap();

    let messages = consume(&broker.brokers(), &topic, 2);
    assert_eq!(messages.len(), 2, "{messages:?}");
    let record = |key: &str| {
        messages
            .iter()
            .find(|m| m.key.contains(key))
            .and_then(|m| m.value.clone())
            .unwrap()
    };
    let (first, second) = (record("\"a\""), record("\"b\""));
    assert_eq!(first["recordFormat"], "application/json");
    assert_eq!(first["tableName"], "kinesis");
    assert_eq!(first["dynamodb"]["NewImage"]["v"]["N"], "1");
    // The update is asynchronous (UPDATING), as in DynamoDB: a change from before it may come
    // in either precision, every change written after it comes in the new one.
    assert_eq!(
        second["dynamodb"]["ApproximateCreationDateTimePrecision"],
        "MICROSECOND"
    );
    let millis = |v: &Value| {
        let created = v["dynamodb"]["ApproximateCreationDateTime"]
            .as_u64()
            .unwrap();
        match v["dynamodb"]["ApproximateCreationDateTimePrecision"].as_str() {
            Some("MICROSECOND") => created / 1000,
            _ => created,
        }
    };
    // The same clock, whatever the unit: in order, and close together.
    assert!(millis(&second) >= millis(&first));
    assert!(millis(&second) - millis(&first) < 60_000);

    let disabled = client
        .disable_kinesis_streaming_destination()
        .table_name("kinesis")
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        disabled.destination_status(),
        Some(&DestinationStatus::Disabling)
    );
    assert_eq!(
        destinations().await[0].destination_status(),
        Some(&DestinationStatus::Disabled)
    );
    assert_eq!(status(&node.endpoint()).await["Tables"], json!([]));
    // A change after the destination is off is not published.
    client
        .put_item()
        .table_name("kinesis")
        .item("p", s("c"))
        .send()
        .await
        .unwrap();
    let messages = consume(&broker.brokers(), &topic, 2);
    assert_eq!(messages.len(), 2, "{messages:?}");
    // Turned on again, with the enable configuration.
    let again = client
        .enable_kinesis_streaming_destination()
        .table_name("kinesis")
        .stream_arn(&arn)
        .enable_kinesis_streaming_configuration(
            EnableKinesisStreamingConfiguration::builder()
                .approximate_creation_date_time_precision(Precision::Microsecond)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        again
            .enable_kinesis_streaming_configuration()
            .and_then(|c| c.approximate_creation_date_time_precision()),
        Some(&Precision::Microsecond)
    );
}
