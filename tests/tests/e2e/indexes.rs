//! Secondary indexes through the AWS SDK: entries follow every write in the same commit.

use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use tidemark_tests::TestNode;

use crate::common::{attribute, error_code, gsi_create, key_element, n, s};

async fn by_owner(client: &aws_sdk_dynamodb::Client, owner: &str) -> Vec<(String, String)> {
    let page = client
        .query()
        .table_name("docs")
        .index_name("by_owner")
        .key_condition_expression("#o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s(owner))
        .send()
        .await
        .unwrap();
    page.items()
        .iter()
        .map(|i| {
            (
                i["p"].as_s().unwrap().clone(),
                i["rank"].as_n().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_global_index_follows_puts_updates_and_deletes() {
    let node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name("docs")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("owner", ScalarAttributeType::S))
        .attribute_definitions(attribute("rank", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_owner")
                .key_schema(key_element("owner", KeyType::Hash))
                .key_schema(key_element("rank", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (p, owner, rank) in [("d1", "ann", "3"), ("d2", "ann", "1"), ("d3", "bob", "2")] {
        client
            .put_item()
            .table_name("docs")
            .item("p", s(p))
            .item("owner", s(owner))
            .item("rank", n(rank))
            .item("body", s("x"))
            .send()
            .await
            .unwrap();
    }
    // Sparse: no owner, no entry.
    client
        .put_item()
        .table_name("docs")
        .item("p", s("d4"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_owner(&client, "ann").await,
        [("d2".into(), "1".into()), ("d1".into(), "3".into())]
    );

    // Moving an item to another owner moves its entry.
    client
        .update_item()
        .table_name("docs")
        .key("p", s("d1"))
        .update_expression("SET #o = :b")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":b", s("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_owner(&client, "ann").await, [("d2".into(), "1".into())]);
    assert_eq!(
        by_owner(&client, "bob").await,
        [("d3".into(), "2".into()), ("d1".into(), "3".into())]
    );

    client
        .delete_item()
        .table_name("docs")
        .key("p", s("d3"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_owner(&client, "bob").await, [("d1".into(), "3".into())]);

    // KEYS_ONLY: the body is not in the index.
    let page = client
        .scan()
        .table_name("docs")
        .index_name("by_owner")
        .send()
        .await
        .unwrap();
    assert_eq!(page.count, 2);
    assert!(page.items().iter().all(|i| !i.contains_key("body")));

    // Index keys are type-checked on write; consistent reads of a GSI are refused.
    let wrong = client
        .put_item()
        .table_name("docs")
        .item("p", s("d5"))
        .item("rank", s("high"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong), "ValidationException");
    let consistent = client
        .query()
        .table_name("docs")
        .index_name("by_owner")
        .key_condition_expression("#o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s("bob"))
        .consistent_read(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&consistent), "ValidationException");
}

#[tokio::test]
async fn a_global_index_created_later_is_backfilled_and_survives_a_restart() {
    let mut node = TestNode::start().await;
    let client = node.client();
    crate::common::create_table(&client, "late", false).await;
    for i in 0..250 {
        let mut put = client
            .put_item()
            .table_name("late")
            .item("p", s(&format!("k{i}")));
        if i % 2 == 0 {
            put = put.item("color", s(if i % 4 == 0 { "red" } else { "blue" }));
        }
        put.send().await.unwrap();
    }
    // An empty string is no key: the backfill leaves the item out, as DynamoDB does.
    client
        .put_item()
        .table_name("late")
        .item("p", s("empty"))
        .item("color", s(""))
        .send()
        .await
        .unwrap();
    let described = client
        .update_table()
        .table_name("late")
        .attribute_definitions(attribute("color", ScalarAttributeType::S))
        .global_secondary_index_updates(gsi_create("by_color", "color"))
        .send()
        .await
        .unwrap();
    let gsis = described
        .table_description
        .unwrap()
        .global_secondary_indexes
        .unwrap();
    assert_eq!(gsis[0].index_status.as_ref().unwrap().as_str(), "CREATING");
    assert_eq!(gsis[0].backfilling, Some(true));
    let active = tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let table = node
            .client()
            .describe_table()
            .table_name("late")
            .send()
            .await
            .unwrap();
        let gsi = &table.table.unwrap().global_secondary_indexes.unwrap()[0];
        gsi.index_status.as_ref().map(|s| s.as_str()) == Some("ACTIVE") && gsi.backfilling.is_none()
    })
    .await;
    assert!(active, "the backfill finishes and the index becomes ACTIVE");
    let count = |color: &'static str| {
        let client = node.client();
        async move {
            client
                .query()
                .table_name("late")
                .index_name("by_color")
                .key_condition_expression("color = :c")
                .expression_attribute_values(":c", s(color))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .send()
                .await
                .unwrap()
                .count
        }
    };
    assert_eq!((count("red").await, count("blue").await), (63, 62));
    node.restart().await;
    let client = node.client();
    client
        .put_item()
        .table_name("late")
        .item("p", s("new"))
        .item("color", s("red"))
        .send()
        .await
        .unwrap();
    let red = client
        .query()
        .table_name("late")
        .index_name("by_color")
        .key_condition_expression("color = :c")
        .expression_attribute_values(":c", s("red"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        red.count, 64,
        "backfilled entries survive the restart and new writes join them"
    );
    let table = client
        .describe_table()
        .table_name("late")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let gsi = &table.global_secondary_indexes.unwrap()[0];
    assert_eq!(
        gsi.item_count,
        Some(126),
        "backfilled and written entries are counted exactly"
    );
    assert!(gsi.index_size_bytes.unwrap() > 0);
}

/// A global index keyed by `tournament` and `league` (partition) and `round` (N) and
/// `bracket` (sort): DynamoDB's multi-attribute keys.
fn by_place() -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name("by_place")
        .key_schema(key_element("tournament", KeyType::Hash))
        .key_schema(key_element("league", KeyType::Hash))
        .key_schema(key_element("round", KeyType::Range))
        .key_schema(key_element("bracket", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap()
}

/// The matches a Query of `by_place` in `matches` returns (every page), by their `p`, with
/// the `LastEvaluatedKey` of each page that had one.
async fn matches_in(
    client: &aws_sdk_dynamodb::Client,
    condition: &str,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    limit: Option<i32>,
) -> (
    Vec<String>,
    Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) {
    matches_of("matches", client, condition, values, limit).await
}

/// [`matches_in`] for the table named `table`.
async fn matches_of(
    table: &str,
    client: &aws_sdk_dynamodb::Client,
    condition: &str,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    limit: Option<i32>,
) -> (
    Vec<String>,
    Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) {
    let mut found = Vec::new();
    let mut last_keys = Vec::new();
    let mut start = None;
    loop {
        let mut query = client
            .query()
            .table_name(table)
            .index_name("by_place")
            .key_condition_expression(condition)
            .set_exclusive_start_key(start.clone())
            .set_limit(limit);
        for (name, value) in values {
            query = query.expression_attribute_values(*name, value.clone());
        }
        let page = query.send().await.unwrap();
        found.extend(page.items().iter().map(|i| i["p"].as_s().unwrap().clone()));
        match page.last_evaluated_key {
            Some(key) => {
                last_keys.push(key.clone());
                start = Some(key);
            }
            None => return (found, last_keys),
        }
    }
}

async fn put_match(
    client: &aws_sdk_dynamodb::Client,
    p: &str,
    fields: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) {
    let mut put = client.put_item().table_name("matches").item("p", s(p));
    for (name, value) in fields {
        put = put.item(*name, value.clone());
    }
    put.send().await.unwrap();
}

#[tokio::test]
async fn a_multi_attribute_global_index_binds_partition_attributes_and_sort_attributes_left_to_right()
 {
    let mut node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name("matches")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("tournament", ScalarAttributeType::S))
        .attribute_definitions(attribute("league", ScalarAttributeType::S))
        .attribute_definitions(attribute("round", ScalarAttributeType::N))
        .attribute_definitions(attribute("bracket", ScalarAttributeType::S))
        .global_secondary_indexes(by_place())
        .send()
        .await
        .unwrap();
    let described = client
        .describe_table()
        .table_name("matches")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let schema: Vec<(String, String)> = described.global_secondary_indexes.unwrap()[0]
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name.clone(), k.key_type.as_str().to_string()))
        .collect();
    assert_eq!(
        schema,
        [
            ("tournament".to_string(), "HASH".to_string()),
            ("league".into(), "HASH".into()),
            ("round".into(), "RANGE".into()),
            ("bracket".into(), "RANGE".into()),
        ]
    );

    // Written out of order; the index orders them by round (numerically), then bracket.
    for (p, round, bracket) in [
        ("m1", "10", "upper"),
        ("m2", "2", "lower"),
        ("m3", "2", "upper"),
        ("m4", "1", "upper"),
        ("m5", "2", "final"),
    ] {
        put_match(
            &client,
            p,
            &[
                ("tournament", s("winter")),
                ("league", s("eu")),
                ("round", n(round)),
                ("bracket", s(bracket)),
            ],
        )
        .await;
    }
    // Another partition, and two items that lack one key attribute each: not indexed.
    put_match(
        &client,
        "other",
        &[
            ("tournament", s("winter")),
            ("league", s("us")),
            ("round", n("2")),
            ("bracket", s("upper")),
        ],
    )
    .await;
    put_match(
        &client,
        "no-league",
        &[
            ("tournament", s("winter")),
            ("round", n("2")),
            ("bracket", s("upper")),
        ],
    )
    .await;
    put_match(
        &client,
        "no-bracket",
        &[
            ("tournament", s("winter")),
            ("league", s("eu")),
            ("round", n("2")),
        ],
    )
    .await;

    let partition = [(":t", s("winter")), (":r", s("eu"))];
    let with = |extra: &[(&'static str, aws_sdk_dynamodb::types::AttributeValue)]| {
        let mut all = partition.to_vec();
        all.extend_from_slice(extra);
        all
    };
    let whole = "tournament = :t AND league = :r";
    assert_eq!(
        matches_in(&client, whole, &partition, None).await.0,
        ["m4", "m5", "m2", "m3", "m1"]
    );
    // A start key must lie inside the query: in its partition, and at the sort values it pins.
    let start_outside = |league: &str, round: &str| {
        client
            .query()
            .table_name("matches")
            .index_name("by_place")
            .key_condition_expression("tournament = :t AND league = :r AND round = :n")
            .expression_attribute_values(":t", s("winter"))
            .expression_attribute_values(":r", s("eu"))
            .expression_attribute_values(":n", n("2"))
            .exclusive_start_key("p", s("m1"))
            .exclusive_start_key("tournament", s("winter"))
            .exclusive_start_key("league", s(league))
            .exclusive_start_key("round", n(round))
            .exclusive_start_key("bracket", s("upper"))
            .send()
    };
    for (league, round, message) in [
        (
            "us",
            "2",
            "The provided starting key is invalid: The provided starting key does not match the query's partition key",
        ),
        (
            "eu",
            "10",
            "The provided starting key is outside query boundaries based on provided conditions",
        ),
    ] {
        let refused = start_outside(league, round).await.unwrap_err();
        assert_eq!(
            refused.into_service_error().meta().message(),
            Some(message),
            "{league} {round}"
        );
    }
    start_outside("eu", "2").await.unwrap();

    // PartiQL reads the index too (as a filtered scan of it: the same items, unordered).
    let selected = client
        .execute_statement()
        .statement(r#"SELECT p FROM "matches"."by_place" WHERE tournament = ? AND league = ?"#)
        .parameters(s("winter"))
        .parameters(s("eu"))
        .send()
        .await
        .unwrap();
    let mut selected: Vec<&str> = selected
        .items()
        .iter()
        .map(|i| i["p"].as_s().unwrap().as_str())
        .collect();
    selected.sort_unstable();
    assert_eq!(selected, ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(
        matches_in(
            &client,
            "league = :r AND round = :n AND tournament = :t",
            &with(&[(":n", n("2"))]),
            None
        )
        .await
        .0,
        ["m5", "m2", "m3"]
    );
    assert_eq!(
        matches_in(
            &client,
            "tournament = :t AND league = :r AND round = :n AND bracket > :b",
            &with(&[(":n", n("2")), (":b", s("final"))]),
            None
        )
        .await
        .0,
        ["m2", "m3"]
    );
    assert_eq!(
        matches_in(
            &client,
            "tournament = :t AND league = :r AND round BETWEEN :lo AND :hi",
            &with(&[(":lo", n("2")), (":hi", n("9"))]),
            None
        )
        .await
        .0,
        ["m5", "m2", "m3"]
    );
    assert_eq!(
        matches_in(
            &client,
            "tournament = :t AND league = :r AND round = :n AND begins_with(bracket, :b)",
            &with(&[(":n", n("2")), (":b", s("up"))]),
            None
        )
        .await
        .0,
        ["m3"]
    );

    // Paging: every page's LastEvaluatedKey names every index key attribute and the
    // table's key, and resuming from it loses and repeats nothing.
    let (paged, last_keys) = matches_in(&client, whole, &partition, Some(2)).await;
    assert_eq!(paged, ["m4", "m5", "m2", "m3", "m1"]);
    assert_eq!(last_keys.len(), 2);
    for key in &last_keys {
        let mut names: Vec<&str> = key.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["bracket", "league", "p", "round", "tournament"]);
    }

    // A missing partition attribute, a non-equality on one, a gap in the sort attributes
    // and a range condition before the last bound sort attribute are refused.
    for (condition, values, word) in [
        ("tournament = :t", vec![(":t", s("winter"))], "HASH"),
        (
            "tournament = :t AND league > :r",
            partition.to_vec(),
            "HASH",
        ),
        (
            "tournament = :t AND league = :r AND bracket = :b",
            with(&[(":b", s("upper"))]),
            "RANGE",
        ),
        (
            "tournament = :t AND league = :r AND round > :n AND bracket = :b",
            with(&[(":n", n("1")), (":b", s("upper"))]),
            "RANGE",
        ),
    ] {
        let mut query = client
            .query()
            .table_name("matches")
            .index_name("by_place")
            .key_condition_expression(condition);
        for (name, value) in values {
            query = query.expression_attribute_values(name, value);
        }
        let error = query.send().await.unwrap_err();
        assert_eq!(error_code(&error), "ValidationException", "{condition}");
        let message = error
            .as_service_error()
            .and_then(|e| e.meta().message())
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains(word) && message.contains("equality"),
            "{condition}: {message}"
        );
    }

    // The index's key types are checked on every write, all four attributes of them.
    let wrong = client
        .put_item()
        .table_name("matches")
        .item("p", s("bad"))
        .item("league", n("3"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong), "ValidationException");

    // Removing one key attribute takes an item out of the index; the definitions and entries
    // read back after a restart.
    client
        .update_item()
        .table_name("matches")
        .key("p", s("m5"))
        .update_expression("REMOVE bracket")
        .send()
        .await
        .unwrap();
    node.restart().await;
    let client = node.client();
    assert_eq!(
        matches_in(&client, whole, &partition, None).await.0,
        ["m4", "m2", "m3", "m1"]
    );
    let scanned = client
        .scan()
        .table_name("matches")
        .index_name("by_place")
        .send()
        .await
        .unwrap();
    assert_eq!(
        scanned.count, 5,
        "m1-m4 and other; m5 and the partial items are not indexed"
    );
}

#[tokio::test]
async fn a_multi_attribute_global_index_created_later_is_backfilled() {
    let node = TestNode::start().await;
    let client = node.client();
    crate::common::create_table(&client, "matches", false).await;
    for (p, league) in [("a", "eu"), ("b", "eu"), ("c", "us")] {
        put_match(
            &client,
            p,
            &[
                ("tournament", s("spring")),
                ("league", s(league)),
                ("round", n("1")),
                ("bracket", s(p)),
            ],
        )
        .await;
    }
    put_match(
        &client,
        "partial",
        &[("tournament", s("spring")), ("league", s("eu"))],
    )
    .await;
    let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
        .index_name("by_place")
        .set_key_schema(Some(by_place().key_schema().to_vec()))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap();
    client
        .update_table()
        .table_name("matches")
        .attribute_definitions(attribute("tournament", ScalarAttributeType::S))
        .attribute_definitions(attribute("league", ScalarAttributeType::S))
        .attribute_definitions(attribute("round", ScalarAttributeType::N))
        .attribute_definitions(attribute("bracket", ScalarAttributeType::S))
        .global_secondary_index_updates(
            aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                .create(create)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let active = tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let table = node
            .client()
            .describe_table()
            .table_name("matches")
            .send()
            .await
            .unwrap();
        let gsi = &table.table.unwrap().global_secondary_indexes.unwrap()[0];
        gsi.index_status.as_ref().map(|s| s.as_str()) == Some("ACTIVE")
    })
    .await;
    assert!(active, "the backfill finishes");
    assert_eq!(
        matches_in(
            &client,
            "tournament = :t AND league = :r",
            &[(":t", s("spring")), (":r", s("eu"))],
            None
        )
        .await
        .0,
        ["a", "b"]
    );
}

#[tokio::test]
async fn a_backup_restores_a_multi_attribute_global_index() {
    let node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name("matches")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("tournament", ScalarAttributeType::S))
        .attribute_definitions(attribute("league", ScalarAttributeType::S))
        .attribute_definitions(attribute("round", ScalarAttributeType::N))
        .attribute_definitions(attribute("bracket", ScalarAttributeType::S))
        .global_secondary_indexes(by_place())
        .send()
        .await
        .unwrap();
    for (p, round) in [("x", "3"), ("y", "1")] {
        put_match(
            &client,
            p,
            &[
                ("tournament", s("autumn")),
                ("league", s("eu")),
                ("round", n(round)),
                ("bracket", s("upper")),
            ],
        )
        .await;
    }
    put_match(
        &client,
        "partial",
        &[("tournament", s("autumn")), ("league", s("eu"))],
    )
    .await;
    let backup = client
        .create_backup()
        .table_name("matches")
        .backup_name("before")
        .send()
        .await
        .unwrap();
    let arn = backup.backup_details().unwrap().backup_arn().to_string();
    let available = tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let described = client
            .describe_backup()
            .backup_arn(&arn)
            .send()
            .await
            .unwrap();
        described
            .backup_description()
            .and_then(|d| d.backup_details())
            .is_some_and(|d| d.backup_status().as_str() == "AVAILABLE")
    })
    .await;
    assert!(available, "the backup becomes AVAILABLE");
    client
        .restore_table_from_backup()
        .backup_arn(&arn)
        .target_table_name("restored")
        .send()
        .await
        .unwrap();
    let active = tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let described = client
            .describe_table()
            .table_name("restored")
            .send()
            .await
            .unwrap();
        described
            .table()
            .and_then(|t| t.table_status())
            .map(|s| s.as_str())
            == Some("ACTIVE")
    })
    .await;
    assert!(active, "the restored table becomes ACTIVE");
    let restored = client
        .describe_table()
        .table_name("restored")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        restored.global_secondary_indexes()[0].key_schema(),
        by_place().key_schema()
    );
    assert_eq!(
        matches_of(
            "restored",
            &client,
            "tournament = :t AND league = :l",
            &[(":t", s("autumn")), (":l", s("eu"))],
            None
        )
        .await
        .0,
        ["y", "x"]
    );
}

/// The index requests DynamoDB refuses are refused, with its messages.
#[tokio::test]
async fn index_requests_dynamodb_refuses_are_refused() {
    use aws_sdk_dynamodb::types::{ComparisonOperator, Condition};
    let node = TestNode::start().await;
    let client = node.client();
    let create = |projection: Projection| {
        client
            .create_table()
            .table_name("projections")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("p", KeyType::Hash))
            .attribute_definitions(attribute("p", ScalarAttributeType::S))
            .attribute_definitions(attribute("x", ScalarAttributeType::S))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by_x")
                    .key_schema(key_element("x", KeyType::Hash))
                    .projection(projection)
                    .build()
                    .unwrap(),
            )
            .send()
    };
    let include = |names: &[&str]| {
        let mut projection = Projection::builder().projection_type(ProjectionType::Include);
        for name in names {
            projection = projection.non_key_attributes(*name);
        }
        projection.build()
    };
    let refused = [
        (
            include(&[]),
            "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
        ),
        (
            Projection::builder().build(),
            "Unknown ProjectionType: null",
        ),
        (
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .non_key_attributes("a")
                .build(),
            "One or more parameter values were invalid: ProjectionType is KEYS_ONLY, but NonKeyAttributes is specified",
        ),
    ];
    for (projection, message) in refused {
        let error = create(projection).await.unwrap_err();
        assert_eq!(error_code(&error), "ValidationException");
        assert_eq!(error.into_service_error().meta().message(), Some(message));
    }
    let twice = create(include(&["a", "a"])).await.unwrap_err();
    assert_eq!(error_code(&twice), "ValidationException");

    create(include(&["a"])).await.unwrap();
    client
        .put_item()
        .table_name("projections")
        .item("p", s("k"))
        .item("x", s("v"))
        .item("a", n("1"))
        .item("b", n("2"))
        .send()
        .await
        .unwrap();
    let by_x = |attribute: &str| {
        client
            .query()
            .table_name("projections")
            .index_name("by_x")
            .key_conditions(
                "x",
                Condition::builder()
                    .comparison_operator(ComparisonOperator::Eq)
                    .attribute_value_list(s("v"))
                    .build()
                    .unwrap(),
            )
            .attributes_to_get(attribute)
            .send()
    };
    let projected = by_x("a").await.unwrap();
    assert_eq!(projected.items()[0].get("a"), Some(&n("1")));
    // A global index holds only what it projects: asking it for more is refused.
    let unprojected = by_x("b").await.unwrap_err();
    assert_eq!(error_code(&unprojected), "ValidationException");

    // A partition of a table without a sort key holds one item: no key to start after.
    let start = client
        .query()
        .table_name("projections")
        .key_condition_expression("p = :p")
        .expression_attribute_values(":p", s("k"))
        .exclusive_start_key("p", s("k"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        start.into_service_error().meta().message(),
        Some(
            "The provided exclusive start key is invalid: ExclusiveStartKey: {p=AttributeValue: {S:k}}"
        )
    );
}
