//! DynamoDB Streams through the AWS SDK: one record per real change with the right event
//! name and images, records readable as soon as the write is acknowledged, shard lineage
//! across rotations and restarts, and the Streams API's errors and paging.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, PutRequest, ReturnValue, StreamSpecification,
    StreamViewType, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodbstreams::types::{
    Record, ShardFilter, ShardFilterType, ShardIteratorType, StreamStatus,
};
use tidemark_core::{ManualClock, SystemClock};
use tidemark_tests::{TestNode, wait_until};

use crate::common::{
    all_shards, create_stream_table, error_code, event_name, image, item, n, read_shard,
    read_stream, record_key, s,
};

type Item = HashMap<String, AttributeValue>;

/// A record as the tests compare it: event name, old image, new image.
type Change = (String, Option<Item>, Option<Item>);

fn change(record: &Record) -> Change {
    let body = record.dynamodb.as_ref().unwrap();
    (
        event_name(record).to_string(),
        body.old_image.as_ref().map(image),
        body.new_image.as_ref().map(image),
    )
}

fn sequence(record: &Record) -> u128 {
    let text = record
        .dynamodb
        .as_ref()
        .unwrap()
        .sequence_number
        .as_deref()
        .expect("SequenceNumber");
    assert_eq!(text.len(), 21, "sequence number {text}");
    assert!(text.bytes().all(|b| b.is_ascii_digit()), "{text}");
    text.parse().unwrap()
}

fn stream_spec(enabled: bool, view_type: Option<StreamViewType>) -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(enabled)
        .set_stream_view_type(view_type)
        .build()
        .unwrap()
}

#[tokio::test]
async fn stream_records_follow_every_kind_of_write() {
    let node = TestNode::start().await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "events", StreamViewType::NewAndOldImages).await;
    let put = |it: Item| {
        client
            .put_item()
            .table_name("events")
            .set_item(Some(it))
            .send()
    };
    let set_v = |key: &str, v: &str| {
        client
            .update_item()
            .table_name("events")
            .key("p", s(key))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n(v))
            .send()
    };

    // PutItem: insert, identical put (no change), changed put.
    put(item(&[("p", s("a")), ("v", n("1"))])).await.unwrap();
    put(item(&[("p", s("a")), ("v", n("1"))])).await.unwrap();
    put(item(&[("p", s("a")), ("v", n("2"))])).await.unwrap();
    // UpdateItem: creates, modifies, then changes nothing.
    set_v("b", "1").await.unwrap();
    set_v("b", "2").await.unwrap();
    set_v("b", "2").await.unwrap();
    // DeleteItem: an existing item, then a missing one.
    let deleted = client
        .delete_item()
        .table_name("events")
        .key("p", s("a"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert!(deleted.attributes.is_some());
    client
        .delete_item()
        .table_name("events")
        .key("p", s("zz"))
        .send()
        .await
        .unwrap();
    // A put whose condition fails writes nothing.
    let failed = client
        .put_item()
        .table_name("events")
        .item("p", s("e"))
        .condition_expression("attribute_exists(p)")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&failed), "ConditionalCheckFailedException");
    // BatchWriteItem: a new item and an overwrite.
    let batch_put = |it: Item| {
        WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(it)).build().unwrap())
            .build()
    };
    client
        .batch_write_item()
        .request_items(
            "events",
            vec![
                batch_put(item(&[("p", s("c")), ("v", n("1"))])),
                batch_put(item(&[("p", s("b")), ("v", n("3")), ("w", s("x"))])),
            ],
        )
        .send()
        .await
        .unwrap();
    // TransactWriteItems: a put of a new item, an update, and a condition check.
    client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("events")
                        .set_item(Some(item(&[("p", s("d")), ("v", n("1"))])))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("events")
                        .key("p", s("c"))
                        .update_expression("SET v = :v")
                        .expression_attribute_values(":v", n("5"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("events")
                        .key("p", s("b"))
                        .condition_expression("attribute_exists(p)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let records = read_stream(&streams, &arn).await;
    let mut by_key: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut shard_of_key: HashMap<String, String> = HashMap::new();
    let mut last_in_shard: HashMap<String, u128> = HashMap::new();
    let mut event_ids = HashSet::new();
    for (shard, record) in &records {
        assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(record.event_version.as_deref(), Some("1.1"));
        assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
        assert!(record.user_identity.is_none(), "{record:?}");
        let id = record.event_id.clone().expect("eventID");
        assert!(!id.is_empty());
        assert!(event_ids.insert(id), "duplicate eventID in {record:?}");
        let body = record.dynamodb.as_ref().unwrap();
        assert!(body.size_bytes.unwrap() > 0, "{record:?}");
        assert!(body.approximate_creation_date_time.is_some());
        assert_eq!(
            body.stream_view_type,
            Some(aws_sdk_dynamodbstreams::types::StreamViewType::NewAndOldImages)
        );
        let key = record_key(record);
        assert_eq!(image(body.keys.as_ref().unwrap()), item(&[("p", s(&key))]));
        let seq = sequence(record);
        if let Some(previous) = last_in_shard.insert(shard.clone(), seq) {
            assert!(seq > previous, "sequence numbers grow within {shard}");
        }
        let first_shard = shard_of_key.entry(key.clone()).or_insert(shard.clone());
        assert_eq!(first_shard, shard, "all records of {key} in one shard");
        by_key.entry(key).or_default().push(change(record));
    }

    let ins = |it: Item| ("INSERT".to_string(), None, Some(it));
    let modify = |old: Item, new: Item| ("MODIFY".to_string(), Some(old), Some(new));
    let rem = |old: Item| ("REMOVE".to_string(), Some(old), None);
    let a = |v: &str| item(&[("p", s("a")), ("v", n(v))]);
    let b = |v: &str| item(&[("p", s("b")), ("v", n(v))]);
    let c = |v: &str| item(&[("p", s("c")), ("v", n(v))]);
    let expected: BTreeMap<String, Vec<Change>> = [
        ("a", vec![ins(a("1")), modify(a("1"), a("2")), rem(a("2"))]),
        (
            "b",
            vec![
                ins(b("1")),
                modify(b("1"), b("2")),
                modify(b("2"), item(&[("p", s("b")), ("v", n("3")), ("w", s("x"))])),
            ],
        ),
        ("c", vec![ins(c("1")), modify(c("1"), c("5"))]),
        ("d", vec![ins(item(&[("p", s("d")), ("v", n("1"))]))]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_key, expected);
    assert_eq!(records.len(), 9);

    let listed = streams.list_streams().send().await.unwrap();
    let listed: Vec<_> = listed
        .streams()
        .iter()
        .map(|s| (s.stream_arn.clone().unwrap(), s.table_name.clone().unwrap()))
        .collect();
    assert_eq!(listed, vec![(arn.clone(), "events".to_string())]);
}

#[tokio::test]
async fn view_types_shape_images() {
    let node = TestNode::start().await;
    let client = node.client();
    let streams = node.streams_client();
    for (table, view_type, has_new, has_old) in [
        ("keys_only", StreamViewType::KeysOnly, false, false),
        ("new_image", StreamViewType::NewImage, true, false),
        ("old_image", StreamViewType::OldImage, false, true),
        ("both", StreamViewType::NewAndOldImages, true, true),
    ] {
        let arn = create_stream_table(&client, table, view_type.clone()).await;
        let description = describe(&streams, &arn).await;
        assert_eq!(
            description.stream_view_type.as_ref().map(|v| v.as_str()),
            Some(view_type.as_str())
        );
        assert_eq!(description.stream_status, Some(StreamStatus::Enabled));
        assert_eq!(description.table_name.as_deref(), Some(table));
        client
            .put_item()
            .table_name(table)
            .item("p", s("k"))
            .item("v", n("1"))
            .send()
            .await
            .unwrap();
        client
            .update_item()
            .table_name(table)
            .key("p", s("k"))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n("2"))
            .send()
            .await
            .unwrap();
        client
            .delete_item()
            .table_name(table)
            .key("p", s("k"))
            .send()
            .await
            .unwrap();
        let records = read_stream(&streams, &arn).await;
        let names: Vec<&str> = records.iter().map(|(_, r)| event_name(r)).collect();
        assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"], "{table}");
        let v = |v: &str| item(&[("p", s("k")), ("v", n(v))]);
        let want_new = [Some(v("1")), Some(v("2")), None];
        let want_old = [None, Some(v("1")), Some(v("2"))];
        for (i, (_, record)) in records.iter().enumerate() {
            let (_, old, new) = change(record);
            let body = record.dynamodb.as_ref().unwrap();
            assert_eq!(
                image(body.keys.as_ref().unwrap()),
                item(&[("p", s("k"))]),
                "{table}"
            );
            assert_eq!(
                body.stream_view_type.as_ref().map(|v| v.as_str()),
                Some(view_type.as_str())
            );
            assert_eq!(
                new,
                want_new[i].clone().filter(|_| has_new),
                "{table} record {i}"
            );
            assert_eq!(
                old,
                want_old[i].clone().filter(|_| has_old),
                "{table} record {i}"
            );
        }
    }
}

#[tokio::test]
async fn streams_api_errors_and_paging() {
    let node = TestNode::start_configured(
        |config| {
            config.store.stream_shards = 2;
            config.shard_rotation_period = Duration::from_millis(100);
        },
        Arc::new(SystemClock),
    )
    .await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "api", StreamViewType::KeysOnly).await;

    // Enabling an enabled stream fails.
    let twice = client
        .update_table()
        .table_name("api")
        .stream_specification(stream_spec(true, Some(StreamViewType::NewImage)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&twice), "ValidationException");

    // One commit, then a rotation: two generations of two shards, then no more rotations
    // (a generation without commits does not rotate).
    client
        .put_item()
        .table_name("api")
        .item("p", s("x"))
        .send()
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), async || {
            all_shards(&streams, &arn, None).await.len() == 4
        })
        .await,
        "a second generation starts"
    );
    let shards = all_shards(&streams, &arn, None).await;
    let ids: Vec<String> = shards.iter().map(|s| s.shard_id.clone().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "shards sorted by id");
    let (old, new) = ids.split_at(2);
    for (i, shard) in shards.iter().enumerate() {
        let range = shard.sequence_number_range.as_ref().unwrap();
        let start = range.starting_sequence_number.as_deref().unwrap();
        assert_eq!(start.len(), 21);
        if i < 2 {
            assert!(shard.parent_shard_id.is_none());
            let end = range.ending_sequence_number.as_deref().expect("closed");
            assert!(end >= start);
        } else {
            assert_eq!(shard.parent_shard_id.as_deref(), Some(old[i - 2].as_str()));
            assert!(range.ending_sequence_number.is_none(), "open");
            let parent_end = shards[i - 2]
                .sequence_number_range()
                .unwrap()
                .ending_sequence_number()
                .unwrap();
            assert!(start > parent_end, "a child starts after its parent ends");
        }
    }

    // Paging one shard at a time.
    let mut paged = Vec::new();
    let mut start: Option<String> = None;
    for page_number in 0.. {
        assert!(page_number < 10, "paging ends");
        let page = streams
            .describe_stream()
            .stream_arn(&arn)
            .limit(1)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap();
        assert_eq!(page.shards().len(), 1);
        let id = page.shards()[0].shard_id.clone().unwrap();
        paged.push(id.clone());
        match page.last_evaluated_shard_id {
            Some(last) => {
                assert_eq!(last, id, "LastEvaluatedShardId is the page's last shard");
                start = Some(last);
            }
            None => break,
        }
    }
    assert_eq!(paged, ids);
    let after_last = streams
        .describe_stream()
        .stream_arn(&arn)
        .exclusive_start_shard_id(ids.last().unwrap())
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    assert!(after_last.shards().is_empty());
    assert!(after_last.last_evaluated_shard_id.is_none());
    // The children of a shard.
    let children = streams
        .describe_stream()
        .stream_arn(&arn)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::ChildShards)
                .shard_id(&old[1])
                .build(),
        )
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let children: Vec<_> = children
        .shards()
        .iter()
        .map(|s| s.shard_id.clone().unwrap())
        .collect();
    assert_eq!(children, vec![new[1].clone()]);

    // GetShardIterator and GetRecords errors.
    let latest_with_number = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&new[0])
        .shard_iterator_type(ShardIteratorType::Latest)
        .sequence_number("100000000000000000001")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&latest_with_number), "ValidationException");
    let unknown_shard = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id("shardId-00000000000000099999-00000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&unknown_shard), "ResourceNotFoundException");
    let unknown_stream = streams
        .describe_stream()
        .stream_arn(format!("{arn}0"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&unknown_stream), "ResourceNotFoundException");
    let garbage = streams
        .get_records()
        .shard_iterator("garbage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&garbage), "ValidationException");
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&new[0])
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let too_many = streams
        .get_records()
        .shard_iterator(&iterator)
        .limit(1001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&too_many), "ValidationException");
    streams
        .get_records()
        .shard_iterator(&iterator)
        .limit(1000)
        .send()
        .await
        .unwrap();

    // Disabling closes every shard; each reads to its end.
    client
        .update_table()
        .table_name("api")
        .stream_specification(stream_spec(false, None))
        .send()
        .await
        .unwrap();
    let disabled = describe(&streams, &arn).await;
    assert_eq!(disabled.stream_status, Some(StreamStatus::Disabled));
    assert_eq!(disabled.shards().len(), 4);
    let mut found = Vec::new();
    for shard in disabled.shards() {
        let range = shard.sequence_number_range.as_ref().unwrap();
        assert!(range.ending_sequence_number.is_some(), "{shard:?} closed");
        let id = shard.shard_id().unwrap();
        let (records, ended) = read_shard(&streams, &arn, id).await;
        assert!(ended, "{shard:?} reads to its end");
        found.extend(records.into_iter().map(|r| (id.to_string(), r)));
    }
    assert_eq!(found.len(), 1, "the one put");

    // AT_ and AFTER_SEQUENCE_NUMBER of that record; a number outside the shard is refused.
    let (shard, record) = &found[0];
    let number = record
        .dynamodb
        .as_ref()
        .unwrap()
        .sequence_number
        .clone()
        .unwrap();
    let read_from = |kind: ShardIteratorType, number: String| {
        let streams = streams.clone();
        let (arn, shard) = (arn.clone(), shard.clone());
        async move {
            let iterator = streams
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(shard)
                .shard_iterator_type(kind)
                .sequence_number(number)
                .send()
                .await?
                .shard_iterator
                .unwrap();
            Ok::<_, aws_sdk_dynamodbstreams::error::SdkError<_, _>>(
                streams
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await
                    .unwrap(),
            )
        }
    };
    let at = read_from(ShardIteratorType::AtSequenceNumber, number.clone())
        .await
        .unwrap();
    assert_eq!(at.records().len(), 1);
    assert_eq!(record_key(&at.records()[0]), "x");
    assert!(
        at.next_shard_iterator.is_none(),
        "closed shard read to its end"
    );
    let after = read_from(ShardIteratorType::AfterSequenceNumber, number.clone())
        .await
        .unwrap();
    assert!(after.records().is_empty());
    assert!(after.next_shard_iterator.is_none());
    let beyond = (number.parse::<u128>().unwrap() + 1_000_000).to_string();
    let outside = read_from(ShardIteratorType::AtSequenceNumber, beyond)
        .await
        .unwrap_err();
    assert_eq!(error_code(&outside), "ValidationException");
    let again = client
        .update_table()
        .table_name("api")
        .stream_specification(stream_spec(false, None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&again), "ValidationException");

    // Re-enabling makes a new stream; both are listed.
    let enabled = client
        .update_table()
        .table_name("api")
        .stream_specification(stream_spec(true, Some(StreamViewType::NewImage)))
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    let second = enabled.latest_stream_arn.expect("new LatestStreamArn");
    assert_ne!(second, arn);
    let described = client
        .describe_table()
        .table_name("api")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        described.latest_stream_arn.as_deref(),
        Some(second.as_str())
    );
    let listed = streams
        .list_streams()
        .table_name("api")
        .send()
        .await
        .unwrap();
    let mut listed: Vec<String> = listed
        .streams()
        .iter()
        .map(|s| s.stream_arn.clone().unwrap())
        .collect();
    listed.sort();
    let mut both = vec![arn.clone(), second.clone()];
    both.sort();
    assert_eq!(listed, both);
    let status = |arn: String| {
        let streams = streams.clone();
        async move { describe(&streams, &arn).await.stream_status.unwrap() }
    };
    assert_eq!(status(arn).await, StreamStatus::Disabled);
    assert_eq!(status(second).await, StreamStatus::Enabled);
}

#[tokio::test]
async fn iterator_expires_after_fifteen_minutes() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let node = TestNode::start_configured(|_| {}, clock.clone()).await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "expiry", StreamViewType::KeysOnly).await;
    let shard = all_shards(&streams, &arn, None).await[0]
        .shard_id
        .clone()
        .unwrap();
    let iterator = || {
        let streams = streams.clone();
        let (arn, shard) = (arn.clone(), shard.clone());
        async move {
            streams
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap()
        }
    };
    let fresh = iterator().await;
    let old = iterator().await;
    clock.advance(15 * 60 * 1000 - 1000);
    streams
        .get_records()
        .shard_iterator(&fresh)
        .send()
        .await
        .expect("usable for 15 minutes");
    clock.advance(2000);
    let expired = streams
        .get_records()
        .shard_iterator(&old)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&expired), "ExpiredIteratorException");
    streams
        .get_records()
        .shard_iterator(iterator().await)
        .send()
        .await
        .expect("a new iterator works");
}

#[tokio::test]
async fn records_are_visible_once_acknowledged() {
    let node = TestNode::start_configured(
        |config| config.store.stream_shards = 1,
        Arc::new(SystemClock),
    )
    .await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "visible", StreamViewType::NewImage).await;
    let shards = all_shards(&streams, &arn, None).await;
    assert_eq!(shards.len(), 1);
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(shards[0].shard_id.clone().unwrap())
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    for i in 0..20 {
        let key = format!("k{i}");
        client
            .put_item()
            .table_name("visible")
            .item("p", s(&key))
            .item("v", n(&i.to_string()))
            .send()
            .await
            .unwrap();
        // One read, no waiting: the acknowledged write is already in the stream.
        let page = streams
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap();
        let keys: Vec<String> = page.records().iter().map(record_key).collect();
        assert_eq!(keys, vec![key], "write {i}");
        assert_eq!(event_name(&page.records()[0]), "INSERT");
        iterator = page.next_shard_iterator.expect("open shard");
    }
}

const WRITERS: usize = 4;
const WRITES_EACH: usize = 150;
const KEYS: usize = 20;

/// A consumer's view of one shard (a KCL lease).
#[derive(Debug, Default)]
struct Lease {
    parent: Option<String>,
    /// Sequence number of the last record processed.
    checkpoint: Option<String>,
    iterator: Option<String>,
    started: bool,
    drained: bool,
    /// Every GetRecords answer, for the failure report.
    log: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LeaseEvent {
    Started(String),
    Drained(String),
}

/// What the consumer saw.
#[derive(Debug, Default)]
struct Consumed {
    leases: BTreeMap<String, Lease>,
    /// Per key: (event name, counter value, shard id, sequence number) in the order read.
    by_key: BTreeMap<String, Vec<(String, i64, String, u128)>>,
    events: Vec<LeaseEvent>,
    total: usize,
    /// Iterators taken with AFTER_SEQUENCE_NUMBER from a checkpoint.
    resumes: usize,
    /// Failed requests (the node was restarting).
    failures: usize,
    /// GetRecords calls so far.
    reads: usize,
    /// Passes over the stream so far.
    passes: usize,
}

/// Connection failures are expected while the node restarts; an answer from the node that
/// is an error is a bug.
fn transient<E: std::fmt::Debug, R: std::fmt::Debug>(
    error: aws_sdk_dynamodbstreams::error::SdkError<E, R>,
) -> String {
    use aws_sdk_dynamodbstreams::error::SdkError;
    match error {
        SdkError::ServiceError(_) | SdkError::ConstructionFailure(_) => {
            panic!("the node answered with an error: {error:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Reads one lease from its checkpoint (or TRIM_HORIZON) up to now, or to its end.
async fn read_lease(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    id: &str,
    seen: &mut Consumed,
) -> Result<usize, String> {
    let lease = seen.leases.get_mut(id).unwrap();
    let mut iterator = match lease.iterator.clone() {
        Some(iterator) => iterator,
        None => {
            let request = client.get_shard_iterator().stream_arn(arn).shard_id(id);
            let request = match &lease.checkpoint {
                Some(seq) => {
                    seen.resumes += 1;
                    request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(seq)
                }
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = request.send().await.map_err(transient)?.shard_iterator;
            if !lease.started {
                lease.started = true;
                seen.events.push(LeaseEvent::Started(id.to_string()));
            }
            iterator.expect("ShardIterator")
        }
    };
    let mut new = 0;
    loop {
        // Small, varying pages put page ends everywhere, also just before a shard's end.
        seen.reads += 1;
        let limit = 1 + (seen.reads % 4) as i32;
        let page = client
            .get_records()
            .shard_iterator(&iterator)
            .limit(limit)
            .send()
            .await
            .map_err(transient)?;
        for record in page.records() {
            let key = record_key(record);
            let body = record.dynamodb.as_ref().unwrap();
            let v = match body.new_image.as_ref().and_then(|i| i.get("v")) {
                Some(aws_sdk_dynamodbstreams::types::AttributeValue::N(v)) => {
                    v.parse::<i64>().unwrap()
                }
                other => panic!("no counter in {other:?}"),
            };
            seen.by_key.entry(key).or_default().push((
                event_name(record).to_string(),
                v,
                id.to_string(),
                sequence(record),
            ));
            seen.total += 1;
            new += 1;
            seen.leases.get_mut(id).unwrap().checkpoint = body.sequence_number.clone();
        }
        let lease = seen.leases.get_mut(id).unwrap();
        let empty = page.records().is_empty();
        let seqs: Vec<u128> = page.records().iter().map(sequence).collect();
        lease.log.push(format!(
            "limit {limit}: {seqs:?}, next iterator {}",
            page.next_shard_iterator.is_some()
        ));
        match page.next_shard_iterator {
            None => {
                lease.drained = true;
                lease.iterator = None;
                seen.events.push(LeaseEvent::Drained(id.to_string()));
                return Ok(new);
            }
            Some(next) => {
                lease.iterator = Some(next.clone());
                if empty {
                    return Ok(new);
                }
                iterator = next;
            }
        }
    }
}

/// One pass of the consumer: discovers shards (paging DescribeStream), then reads every
/// shard whose parent is drained, parents first.
async fn consume_pass(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    seen: &mut Consumed,
) -> Result<usize, String> {
    let mut start: Option<String> = None;
    loop {
        let page = client
            .describe_stream()
            .stream_arn(arn)
            .limit(3)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(transient)?
            .stream_description
            .unwrap();
        for shard in page.shards() {
            seen.leases
                .entry(shard.shard_id.clone().unwrap())
                .or_insert_with(|| Lease {
                    parent: shard.parent_shard_id.clone(),
                    ..Lease::default()
                });
        }
        match page.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => break,
        }
    }
    let mut new = 0;
    let ids: Vec<String> = seen.leases.keys().cloned().collect();
    for id in ids {
        let lease = &seen.leases[&id];
        if lease.drained {
            continue;
        }
        if let Some(parent) = &lease.parent {
            match seen.leases.get(parent) {
                Some(parent) if !parent.drained => continue,
                Some(_) => {}
                None => panic!("parent {parent} of {id} was never listed"),
            }
        }
        new += read_lease(client, arn, &id, seen).await?;
    }
    Ok(new)
}

/// Follows the stream like a KCL worker until it has read `expected` records (once that is
/// known) and a pass finds nothing new, or until `stop`. Every other pass, and after a failed
/// request (with the current client), it drops its iterators and resumes from its
/// checkpoints with AFTER_SEQUENCE_NUMBER.
async fn consume(
    arn: String,
    client: Arc<std::sync::RwLock<aws_sdk_dynamodbstreams::Client>>,
    expected: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Consumed {
    let mut seen = Consumed::default();
    for pass in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        seen.passes = pass;
        if pass % 2 == 0 {
            // Hand the leases over (as to another worker): resume from the checkpoints.
            for lease in seen.leases.values_mut() {
                lease.iterator = None;
            }
        }
        let current = client.read().unwrap().clone();
        match consume_pass(&current, &arn, &mut seen).await {
            Ok(0) if seen.total >= expected.load(Ordering::SeqCst) => break,
            Ok(0) => tokio::time::sleep(Duration::from_millis(10)).await,
            Ok(_) => {}
            Err(_) => {
                seen.failures += 1;
                for lease in seen.leases.values_mut() {
                    lease.iterator = None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    seen
}

/// Explains a consumer that did not see every write: what a fresh read of every shard from
/// TRIM_HORIZON finds, and where the missing records are.
async fn diagnose(
    node: &TestNode,
    arn: &str,
    seen: &Consumed,
    written: &BTreeMap<String, Vec<i64>>,
) -> ! {
    let streams = node.streams_client();
    let shards = all_shards(&streams, arn, None).await;
    let mut report = String::new();
    let mut fresh: BTreeMap<String, Vec<(i64, String, u128)>> = BTreeMap::new();
    for shard in &shards {
        let id = shard.shard_id().unwrap();
        let (records, ended) = read_shard(&streams, arn, id).await;
        report += &format!(
            "shard {id} parent {:?} range {:?}: {} records, ended {ended}, lease {:?}\n",
            shard.parent_shard_id,
            shard.sequence_number_range,
            records.len(),
            seen.leases.get(id)
        );
        for record in &records {
            let v = match &record
                .dynamodb
                .as_ref()
                .unwrap()
                .new_image
                .as_ref()
                .unwrap()["v"]
            {
                aws_sdk_dynamodbstreams::types::AttributeValue::N(v) => v.parse().unwrap(),
                other => panic!("{other:?}"),
            };
            fresh.entry(record_key(record)).or_default().push((
                v,
                id.to_string(),
                sequence(record),
            ));
        }
    }
    for (key, values) in written {
        let consumed: Vec<i64> = seen
            .by_key
            .get(key)
            .map(|r| r.iter().map(|r| r.1).collect())
            .unwrap_or_default();
        let stored: Vec<i64> = fresh
            .get(key)
            .map(|r| r.iter().map(|r| r.0).collect())
            .unwrap_or_default();
        let want: Vec<i64> = (1..=values.len() as i64).collect();
        if consumed != want || stored != want {
            report += &format!(
                "{key}: {} writes\n  consumed {:?}\n  in the stream now {:?}\n",
                values.len(),
                seen.by_key.get(key),
                fresh.get(key)
            );
        }
    }
    report += &format!("events {:?}\n", seen.events);
    panic!(
        "the consumer saw {} of {} writes (failures {}, resumes {})\n{report}",
        seen.total,
        written.values().map(Vec::len).sum::<usize>(),
        seen.failures,
        seen.resumes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_follows_lineage_across_rotation_and_restart() {
    let mut node = TestNode::start_configured(
        |config| {
            config.store.stream_shards = 2;
            config.shard_rotation_period = Duration::from_millis(300);
        },
        Arc::new(SystemClock),
    )
    .await;
    let arn = create_stream_table(&node.client(), "lineage", StreamViewType::NewImage).await;
    let writer_client = Arc::new(tokio::sync::RwLock::new(node.client()));
    let reader_client = Arc::new(std::sync::RwLock::new(node.streams_client()));
    let expected = Arc::new(AtomicUsize::new(usize::MAX));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = tokio::spawn(consume(
        arn.clone(),
        reader_client.clone(),
        expected.clone(),
        stop.clone(),
    ));

    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, acked) = (writer_client.clone(), acked.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..WRITES_EACH {
                    let key = format!("k{:02}", (w * 7 + i * 3) % KEYS);
                    let out = {
                        let client = client.read().await;
                        client
                            .update_item()
                            .table_name("lineage")
                            .key("p", s(&key))
                            .update_expression("SET v = if_not_exists(v, :zero) + :one")
                            .expression_attribute_values(":zero", n("0"))
                            .expression_attribute_values(":one", n("1"))
                            .return_values(ReturnValue::UpdatedNew)
                            .send()
                            .await
                            .expect("write acknowledged")
                    };
                    let v: i64 = out.attributes.unwrap()["v"]
                        .as_n()
                        .unwrap()
                        .parse()
                        .unwrap();
                    mine.push((key, v));
                    acked.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                mine
            })
        })
        .collect();

    // Restart in the middle of the load: writers pause (the write lock waits for writes in
    // flight), the consumer's requests fail until it gets the new client.
    let total = WRITERS * WRITES_EACH;
    assert!(
        wait_until(Duration::from_secs(30), async || {
            acked.load(Ordering::SeqCst) >= total / 2
        })
        .await
    );
    {
        let mut writer = writer_client.write().await;
        node.restart().await;
        *writer = node.client();
        *reader_client.write().unwrap() = node.streams_client();
    }

    let mut written: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for writer in writers {
        for (key, v) in writer.await.unwrap() {
            written.entry(key).or_default().push(v);
        }
    }
    for (key, values) in &mut written {
        values.sort();
        let count = values.len() as i64;
        assert_eq!(*values, (1..=count).collect::<Vec<_>>(), "counter of {key}");
    }
    expected.store(total, Ordering::SeqCst);
    let finished = wait_until(Duration::from_secs(15), async || consumer.is_finished()).await;
    stop.store(true, Ordering::SeqCst);
    let seen = consumer.await.unwrap();
    if !finished || seen.total != total {
        diagnose(&node, &arn, &seen, &written).await;
    }

    // Every acknowledged write exactly once, per key in commit order, each key in one lane.
    assert_eq!(seen.total, total);
    assert_eq!(
        seen.by_key.keys().collect::<Vec<_>>(),
        written.keys().collect::<Vec<_>>()
    );
    for (key, records) in &seen.by_key {
        let values: Vec<i64> = records.iter().map(|r| r.1).collect();
        let count = written[key].len() as i64;
        assert_eq!(values, (1..=count).collect::<Vec<_>>(), "records of {key}");
        let names: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names[0], "INSERT", "{key}");
        assert!(
            names[1..].iter().all(|n| *n == "MODIFY"),
            "{key}: {names:?}"
        );
        // One lane: each next shard of the key descends from the one before.
        for pair in records.windows(2) {
            let (before, after) = (&pair[0].2, &pair[1].2);
            let mut ancestor = Some(after);
            while let Some(id) = ancestor
                && id != before
            {
                ancestor = seen.leases[id].parent.as_ref();
            }
            assert!(ancestor.is_some(), "{key}: {after} descends from {before}");
        }
    }

    // The lineage: several generations, each child started only after its parent was
    // drained.
    let depth = |id: &str| {
        let mut depth = 1;
        let mut parent = seen.leases[id].parent.as_deref();
        while let Some(id) = parent {
            depth += 1;
            parent = seen.leases[id].parent.as_deref();
        }
        depth
    };
    let generations = seen.leases.keys().map(|id| depth(id)).max().unwrap();
    assert!(generations >= 2, "{generations} generations");
    assert!(
        seen.by_key
            .values()
            .any(|r| r.first().map(|r| &r.2) != r.last().map(|r| &r.2)),
        "some key's records span generations"
    );
    for (id, lease) in &seen.leases {
        let started = seen
            .events
            .iter()
            .position(|e| *e == LeaseEvent::Started(id.clone()));
        if let Some(parent) = &lease.parent {
            assert!(parent < id, "parent ids sort first");
            let drained = seen
                .events
                .iter()
                .position(|e| *e == LeaseEvent::Drained(parent.clone()))
                .expect("parent drained");
            assert!(drained < started.expect("every shard read"), "{id}");
        }
    }
    assert!(seen.failures > 0, "the consumer saw the restart");
    assert!(
        seen.resumes > 0,
        "the consumer resumed from checkpoints ({} passes, {} reads)",
        seen.passes,
        seen.reads
    );

    // Records lie within their shards' ranges; exactly the shards without children are open.
    let streams = node.streams_client();
    let shards = all_shards(&streams, &arn, None).await;
    let parents: HashSet<&str> = shards.iter().filter_map(|s| s.parent_shard_id()).collect();
    let mut ranges = HashMap::new();
    for shard in &shards {
        let range = shard.sequence_number_range.as_ref().unwrap();
        let start: u128 = range.starting_sequence_number().unwrap().parse().unwrap();
        let end: Option<u128> = range.ending_sequence_number().map(|e| e.parse().unwrap());
        assert_eq!(
            end.is_none(),
            !parents.contains(shard.shard_id().unwrap()),
            "{shard:?}"
        );
        ranges.insert(shard.shard_id().unwrap().to_string(), (start, end));
    }
    for record in seen.by_key.values().flatten() {
        let (start, end) = ranges[&record.2];
        assert!(record.3 >= start && end.is_none_or(|end| record.3 <= end));
    }
}

// A new table's stream has one shard, as on DynamoDB: a consumer that reads the first shard
// it is given sees every record (issue 29).
#[tokio::test]
async fn a_new_tables_stream_has_one_shard_holding_every_record() {
    let node = TestNode::start().await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "fresh", StreamViewType::KeysOnly).await;
    for i in 0..20 {
        client
            .put_item()
            .table_name("fresh")
            .item("p", s(&format!("k{i}")))
            .send()
            .await
            .unwrap();
    }
    let described = describe(&streams, &arn).await;
    let shards = described.shards();
    assert_eq!(shards.len(), 1, "{shards:?}");
    let first = shards[0].shard_id().unwrap();
    let (records, _) = read_shard(&streams, &arn, first).await;
    let keys: HashSet<String> = records.iter().map(record_key).collect();
    assert_eq!(
        keys.len(),
        20,
        "every item's record is in the first shard: {keys:?}"
    );
}

/// The stream's description, as DescribeStream answers it.
async fn describe(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> aws_sdk_dynamodbstreams::types::StreamDescription {
    streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap()
}
