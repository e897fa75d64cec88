//! Time to Live through the AWS SDK: the settings and their validation, and the expiry of due
//! items (and only those) with service-flagged REMOVE records in the table's stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, StreamViewType, TimeToLiveSpecification, TimeToLiveStatus,
};
use tidemark_core::{ManualClock, SystemClock};
use tidemark_tests::{TestNode, wait_until};

use crate::common::{
    create_stream_table, create_table, error_code, event_name, image, item, n, read_stream,
    record_key, s,
};

type Item = HashMap<String, AttributeValue>;

async fn update_ttl(
    client: &Client,
    table: &str,
    enabled: bool,
    attribute: &str,
) -> Result<(), String> {
    let spec = TimeToLiveSpecification::builder()
        .enabled(enabled)
        .attribute_name(attribute)
        .build()
        .unwrap();
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(out) => {
            let spec = out.time_to_live_specification.unwrap();
            assert_eq!(
                (spec.enabled, spec.attribute_name.as_str()),
                (enabled, attribute)
            );
            Ok(())
        }
        Err(e) => Err(error_code(&e)),
    }
}

async fn describe_ttl(client: &Client, table: &str) -> (TimeToLiveStatus, Option<String>) {
    let description = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    (
        description.time_to_live_status.unwrap(),
        description.attribute_name,
    )
}

async fn get(client: &Client, table: &str, key: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("p", s(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn keys_of(client: &Client, table: &str) -> BTreeSet<String> {
    let page = client.scan().table_name(table).send().await.unwrap();
    assert!(page.last_evaluated_key.is_none());
    page.items()
        .iter()
        .map(|i| i["p"].as_s().unwrap().clone())
        .collect()
}

/// `POST /admin/ttl/sweep`: the number of items it expired.
async fn admin_sweep(node: &TestNode) -> u64 {
    let response = reqwest::Client::new()
        .post(format!("{}/admin/ttl/sweep", node.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["Expired"].as_u64().expect("Expired count")
}

#[tokio::test]
async fn ttl_settings_validate_and_survive_restart() {
    let mut node = TestNode::start_configured(
        |config| config.ttl_period = Duration::from_secs(3600),
        Arc::new(SystemClock),
    )
    .await;
    let client = node.client();
    create_table(&client, "settings", false).await;
    assert_eq!(
        describe_ttl(&client, "settings").await,
        (TimeToLiveStatus::Disabled, None)
    );
    let unknown = client
        .describe_time_to_live()
        .table_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&unknown), "ResourceNotFoundException");

    update_ttl(&client, "settings", true, "exp").await.unwrap();
    assert_eq!(
        describe_ttl(&client, "settings").await,
        (TimeToLiveStatus::Enabled, Some("exp".to_string()))
    );
    let invalid = Err("ValidationException".to_string());
    assert_eq!(update_ttl(&client, "settings", true, "exp").await, invalid);
    assert_eq!(
        update_ttl(&client, "settings", true, "other").await,
        invalid
    );
    assert_eq!(
        update_ttl(&client, "settings", false, "other").await,
        invalid
    );

    // An expired item written now is only deleted after the restart (the sweeper sleeps an
    // hour): the setting and the item's expiry both survive.
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10;
    client
        .put_item()
        .table_name("settings")
        .item("p", s("old"))
        .item("exp", n(&past.to_string()))
        .send()
        .await
        .unwrap();
    assert!(get(&client, "settings", "old").await.is_some());

    node.restart().await;
    let client = node.client();
    assert_eq!(
        describe_ttl(&client, "settings").await,
        (TimeToLiveStatus::Enabled, Some("exp".to_string()))
    );
    node.node().sweep_ttl_now();
    assert!(
        wait_until(Duration::from_secs(5), async || {
            get(&client, "settings", "old").await.is_none()
        })
        .await,
        "the expired item goes after the restart"
    );

    update_ttl(&client, "settings", false, "exp").await.unwrap();
    assert_eq!(
        describe_ttl(&client, "settings").await,
        (TimeToLiveStatus::Disabled, None)
    );
    assert_eq!(update_ttl(&client, "settings", false, "exp").await, invalid);
    node.restart().await;
    assert_eq!(
        describe_ttl(&node.client(), "settings").await,
        (TimeToLiveStatus::Disabled, None)
    );
}

#[tokio::test]
async fn expired_items_are_deleted_with_service_records() {
    const NOW: i64 = 1_800_000_000;
    let clock = Arc::new(ManualClock::new(NOW as u64 * 1000));
    let node = TestNode::start_configured(
        |config| config.ttl_period = Duration::from_secs(3600),
        clock.clone(),
    )
    .await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "sessions", StreamViewType::NewAndOldImages).await;
    let keys_arn = create_stream_table(&client, "sessions_keys", StreamViewType::KeysOnly).await;
    let put = |table: &str, it: Item| {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(it))
            .send()
    };
    let at = |seconds: i64| n(&seconds.to_string());

    // Items that exist before TTL is enabled are indexed by a background backfill.
    put(
        "sessions",
        item(&[("p", s("before")), ("exp", at(NOW - 100)), ("d", s("b"))]),
    )
    .await
    .unwrap();
    put(
        "sessions_keys",
        item(&[("p", s("gone")), ("exp", at(NOW - 50))]),
    )
    .await
    .unwrap();
    update_ttl(&client, "sessions", true, "exp").await.unwrap();
    update_ttl(&client, "sessions_keys", true, "exp")
        .await
        .unwrap();

    put(
        "sessions",
        item(&[
            ("p", s("expired")),
            ("exp", at(NOW - 100)),
            ("data", s("payload")),
            ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            (
                "nested",
                AttributeValue::M(item(&[("x", n("1")), ("y", AttributeValue::Bool(true))])),
            ),
        ]),
    )
    .await
    .unwrap();
    for (key, exp) in [
        ("future", Some(at(NOW + 1000))),
        ("string", Some(s(&(NOW - 100).to_string()))),
        ("millis", Some(at((NOW - 100) * 1000))),
        ("ancient", Some(at(NOW - 6 * 365 * 24 * 3600))),
        ("negative", Some(at(-5))),
        ("missing", None),
        ("rescued", Some(at(NOW - 100))),
        ("deleted", Some(at(NOW + 1000))),
    ] {
        let mut it = item(&[("p", s(key))]);
        if let Some(exp) = exp {
            it.insert("exp".into(), exp);
        }
        put("sessions", it).await.unwrap();
    }
    // Moving the TTL forward before the sweep rescues the item.
    client
        .update_item()
        .table_name("sessions")
        .key("p", s("rescued"))
        .update_expression("SET exp = :later")
        .expression_attribute_values(":later", at(NOW + 2000))
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name("sessions")
        .key("p", s("deleted"))
        .send()
        .await
        .unwrap();
    let mut stored: HashMap<String, Item> = HashMap::new();
    for key in ["before", "expired", "future", "rescued"] {
        stored.insert(key.into(), get(&client, "sessions", key).await.unwrap());
    }
    let gone = get(&client, "sessions_keys", "gone").await.unwrap();

    // Sweep until the backfilled items are gone too.
    let mut expired = 0;
    assert!(
        wait_until(Duration::from_secs(10), async || {
            expired += admin_sweep(&node).await;
            get(&client, "sessions", "before").await.is_none()
                && get(&client, "sessions_keys", "gone").await.is_none()
        })
        .await,
        "items that existed before TTL was enabled expire"
    );
    assert_eq!(expired, 3, "expired, before and gone");
    let survivors: BTreeSet<String> = [
        "future", "string", "millis", "ancient", "negative", "missing", "rescued",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys_of(&client, "sessions").await, survivors);
    assert!(keys_of(&client, "sessions_keys").await.is_empty());
    assert_eq!(admin_sweep(&node).await, 0, "nothing else is due");

    // The stream: a service REMOVE with the whole old item for each expired item, a plain
    // REMOVE for the user's delete, nothing else removed.
    let check_stream = async |expected_service: &[&str]| {
        let mut service = BTreeMap::new();
        let mut user = Vec::new();
        for (_, record) in read_stream(&streams, &arn).await {
            let key = record_key(&record);
            match (event_name(&record), &record.user_identity) {
                ("REMOVE", Some(identity)) => {
                    assert_eq!(identity.r#type.as_deref(), Some("Service"));
                    assert_eq!(
                        identity.principal_id.as_deref(),
                        Some("dynamodb.amazonaws.com")
                    );
                    let body = record.dynamodb.as_ref().unwrap();
                    assert!(body.new_image.is_none());
                    let old = image(body.old_image.as_ref().expect("OldImage"));
                    assert!(service.insert(key, old).is_none(), "one record per expiry");
                }
                ("REMOVE", None) => user.push(key),
                (_, None) => {}
                (name, Some(identity)) => panic!("{name} with {identity:?}"),
            }
        }
        assert_eq!(user, ["deleted"]);
        let want: BTreeMap<String, Item> = expected_service
            .iter()
            .map(|k| (k.to_string(), stored[*k].clone()))
            .collect();
        assert_eq!(service, want);
    };
    check_stream(&["before", "expired"]).await;
    let keys_records = read_stream(&streams, &keys_arn).await;
    let removes: Vec<_> = keys_records
        .iter()
        .filter(|(_, r)| event_name(r) == "REMOVE")
        .collect();
    assert_eq!(removes.len(), 1);
    let (_, remove) = removes[0];
    let identity = remove.user_identity.as_ref().expect("userIdentity");
    assert_eq!(identity.r#type.as_deref(), Some("Service"));
    assert_eq!(
        identity.principal_id.as_deref(),
        Some("dynamodb.amazonaws.com")
    );
    let body = remove.dynamodb.as_ref().unwrap();
    assert!(body.old_image.is_none() && body.new_image.is_none());
    assert_eq!(
        image(body.keys.as_ref().unwrap()),
        item(&[("p", gone["p"].clone())])
    );

    // Time passes: the future item's TTL comes, the rescued one's not yet.
    clock.advance(1500 * 1000);
    assert_eq!(admin_sweep(&node).await, 1);
    assert!(get(&client, "sessions", "future").await.is_none());
    check_stream(&["before", "expired", "future"]).await;

    // Then the rescued item's, through the sweeper task.
    clock.advance(1000 * 1000);
    node.node().sweep_ttl_now();
    assert!(
        wait_until(Duration::from_secs(5), async || {
            get(&client, "sessions", "rescued").await.is_none()
        })
        .await
    );
    check_stream(&["before", "expired", "future", "rescued"]).await;
    let survivors: BTreeSet<String> = ["string", "millis", "ancient", "negative", "missing"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(keys_of(&client, "sessions").await, survivors);
}
