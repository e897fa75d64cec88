//! Global tables' control plane, end to end: real regional nodes (child processes linked
//! through fault proxies) driven by the AWS SDK for Rust. ReplicaUpdates answers errors as
//! DynamoDB does; every region describes the group from its own point of view; the settings
//! replicas share (indexes, TTL) follow a change made anywhere while per-replica ones (tags)
//! do not, and changes made in two regions cut apart both hold after the heal; replicas leave through ReplicaUpdates Delete and DeleteTable; the legacy calls of
//! version 2017.11.29 work; peer requests need a configured region and the group's secret;
//! and a node with a remote peer and no secret refuses to start.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    CreateReplicaAction, DeleteReplicaAction, GlobalSecondaryIndexUpdate, IndexStatus, Replica,
    ReplicaStatus, ReplicaUpdate, ReplicationGroupUpdate, ScalarAttributeType, Tag,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use tidemark_core::model::AttributeValue as CoreValue;
use tidemark_replicator::protocol::{CHANGES_CONTENT_TYPE, ChangeBatch, WireChange};
use tidemark_tests::cluster::Cluster;
use tidemark_tests::wait_until;

use tidemark_tests::cluster::{replica_create, replica_delete, replica_update};

use crate::common::{
    attribute, create_table, get_consistent, global_in_three, gsi_create, node_binary, put_value,
    replicas_in, s, wait_for_group, wait_for_value,
};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const FAST: [&str; 2] = ["--durability", "buffer"];
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

/// UpdateTable with only `ReplicaUpdates`.
async fn replica_updates(
    client: &Client,
    table: &str,
    updates: Vec<ReplicationGroupUpdate>,
) -> Result<
    aws_sdk_dynamodb::operation::update_table::UpdateTableOutput,
    SdkError<aws_sdk_dynamodb::operation::update_table::UpdateTableError>,
> {
    client
        .update_table()
        .table_name(table)
        .set_replica_updates(Some(updates))
        .send()
        .await
}

/// Asserts `result` failed with the DynamoDB exception `code` (and, when given, a message
/// containing `message_part`).
fn assert_fails<T: std::fmt::Debug, E, R>(
    result: Result<T, SdkError<E, R>>,
    code: &str,
    message_part: Option<&str>,
    scenario: &str,
) where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let error = match result {
        Ok(answer) => panic!("{scenario}: expected {code}, but the call succeeded: {answer:?}"),
        Err(error) => error,
    };
    let Some(service) = error.as_service_error() else {
        panic!("{scenario}: expected {code}, got a failure that is not a service error: {error:?}");
    };
    assert_eq!(
        service.code(),
        Some(code),
        "{scenario}: expected {code}, got {service:?}"
    );
    if let Some(part) = message_part {
        let message = service.message().unwrap_or("");
        assert!(
            message.contains(part),
            "{scenario}: expected a {code} message containing {part:?}, got {message:?}"
        );
    }
}

async fn table_arn(client: &Client, table: &str) -> String {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeTable {table} succeeds: {e:?}"))
        .table
        .and_then(|t| t.table_arn)
        .expect("DescribeTable answers a TableArn")
}

async fn tags_of(client: &Client, arn: &str) -> BTreeMap<String, String> {
    client
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTagsOfResource {arn} succeeds: {e:?}"))
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// ReplicaUpdates errors, the group as every region describes it, replication of items, and
/// the shared settings (a GSI, TTL) following a change in another region while tags do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_updates_answer_as_dynamodb_and_shared_settings_follow() {
    let cluster = Cluster::start(node_binary(), &REGIONS, &FAST).await;
    let (a, b, c) = (0, 1, 2);
    let table = "orders";
    let ca = cluster.client(a, OP_TIMEOUT);
    create_table(&ca, table, false).await;
    put_value(&ca, table, "before", "seeded").await;

    // Errors, as DynamoDB answers them.
    assert_fails(
        replica_updates(&ca, table, vec![replica_create(REGIONS[a])]).await,
        "ValidationException",
        Some("Cannot add, delete, or update the local region through ReplicaUpdates"),
        "ReplicaUpdates Create for the local region",
    );
    assert_fails(
        replica_updates(&ca, table, vec![replica_create("sa-east-1")]).await,
        "ValidationException",
        None,
        "ReplicaUpdates Create for a region that is not a configured peer",
    );
    assert_fails(
        replica_updates(&ca, table, vec![replica_delete(REGIONS[b])]).await,
        "ValidationException",
        None,
        "ReplicaUpdates Delete for a region that is not a replica",
    );
    assert_fails(
        replica_updates(&ca, table, vec![replica_update(REGIONS[b])]).await,
        "ValidationException",
        None,
        "ReplicaUpdates Update for a region that is not a replica",
    );
    assert_fails(
        replica_updates(&ca, "no_such_table", vec![replica_create(REGIONS[b])]).await,
        "ResourceNotFoundException",
        None,
        "ReplicaUpdates on a table that does not exist",
    );
    assert!(
        replicas_in(&cluster, a, table)
            .await
            .is_some_and(|r| r.is_empty()),
        "expected the refused ReplicaUpdates to leave {table} a single-region table"
    );
    assert!(
        replicas_in(&cluster, b, table).await.is_none(),
        "expected no replica of {table} in {} after refused ReplicaUpdates",
        REGIONS[b]
    );

    // A first replica.
    replica_updates(&ca, table, vec![replica_create(REGIONS[b])])
        .await
        .expect("ReplicaUpdates Create for a configured peer region succeeds");
    wait_for_group(&cluster, table, &[a, b]).await;
    assert_fails(
        replica_updates(&ca, table, vec![replica_create(REGIONS[b])]).await,
        "ValidationException",
        None,
        "ReplicaUpdates Create for a region that is already a replica",
    );

    // A second one, held CREATING: its seeding waits for every other replica (B) to
    // acknowledge the new membership, and A cannot reach B.
    cluster.link(a, b).cut();
    replica_updates(&ca, table, vec![replica_create(REGIONS[c])])
        .await
        .expect("ReplicaUpdates Create of a third region succeeds while A cannot reach B");
    let creating = replicas_in(&cluster, a, table).await;
    assert_eq!(
        creating
            .as_ref()
            .and_then(|r| r.get(REGIONS[c]).cloned())
            .flatten(),
        Some(ReplicaStatus::Creating),
        "expected {}'s replica to be CREATING while it cannot be seeded; A describes {creating:?}",
        REGIONS[c]
    );
    assert_fails(
        replica_updates(&ca, table, vec![replica_update(REGIONS[b])]).await,
        "ResourceInUseException",
        None,
        "a second ReplicaUpdates while a replica is CREATING",
    );
    cluster.link(a, b).heal();
    wait_for_group(&cluster, table, &[a, b, c]).await;

    // Every region describes the group from its own point of view.
    for (i, region) in REGIONS.iter().enumerate() {
        let described = cluster
            .client(i, OP_TIMEOUT)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeTable in {region} succeeds: {e:?}"))
            .table
            .unwrap();
        assert_eq!(
            described.global_table_version(),
            Some("2019.11.21"),
            "expected GlobalTableVersion 2019.11.21 in {region}"
        );
        let mut listed: Vec<(&str, Option<&ReplicaStatus>)> = described
            .replicas()
            .iter()
            .map(|r| (r.region_name().unwrap_or(""), r.replica_status()))
            .collect();
        listed.sort_by_key(|(r, _)| *r);
        let mut expected: Vec<(&str, Option<&ReplicaStatus>)> = REGIONS
            .iter()
            .filter(|r| *r != region)
            .map(|r| (*r, Some(&ReplicaStatus::Active)))
            .collect();
        expected.sort_by_key(|(r, _)| *r);
        assert_eq!(
            listed, expected,
            "expected {region} to list exactly the other regions' replicas, ACTIVE (never itself)"
        );
    }
    for i in [b, c] {
        let names = cluster
            .client(i, OP_TIMEOUT)
            .list_tables()
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListTables in {} succeeds: {e:?}", REGIONS[i]))
            .table_names
            .unwrap_or_default();
        assert!(
            names.iter().any(|n| n == table),
            "expected ListTables in replica region {} to list {table}, got {names:?}",
            REGIONS[i]
        );
    }

    // Items: the seeded one, and writes in either direction.
    for i in [b, c] {
        wait_for_value(&cluster, i, table, "before", "seeded").await;
    }
    put_value(&ca, table, "from-a", "1").await;
    put_value(&cluster.client(c, OP_TIMEOUT), table, "from-c", "2").await;
    wait_for_value(&cluster, b, table, "from-a", "1").await;
    wait_for_value(&cluster, c, table, "from-a", "1").await;
    wait_for_value(&cluster, a, table, "from-c", "2").await;

    // Shared settings follow a change made in B; B's tag stays B's.
    let cb = cluster.client(b, OP_TIMEOUT);
    let arn_b = table_arn(&cb, table).await;
    cb.tag_resource()
        .resource_arn(&arn_b)
        .tags(Tag::builder().key("team").value("blue").build().unwrap())
        .send()
        .await
        .expect("TagResource in B succeeds");
    cb.update_table()
        .table_name(table)
        .attribute_definitions(attribute("g", ScalarAttributeType::S))
        .global_secondary_index_updates(gsi_create("by_g", "g"))
        .send()
        .await
        .expect("UpdateTable creating a GSI in B succeeds");
    cb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("exp")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateTimeToLive in B succeeds");

    let mut last = None;
    let indexed = wait_until(WAIT, async || {
        let described = ca.describe_table().table_name(table).send().await;
        last = described
            .ok()
            .and_then(|d| d.table)
            .map(|t| t.global_secondary_indexes.unwrap_or_default());
        last.as_ref().is_some_and(|indexes| {
            indexes.iter().any(|i| {
                i.index_name() == Some("by_g") && i.index_status() == Some(&IndexStatus::Active)
            })
        })
    })
    .await;
    assert!(
        indexed,
        "expected the GSI by_g created in B to be ACTIVE in A's DescribeTable within {WAIT:?}; \
         last seen: {last:?}"
    );
    ca.put_item()
        .table_name(table)
        .item("p", s("gsi-a"))
        .item("g", s("green"))
        .send()
        .await
        .expect("PutItem into A succeeds");
    let mut last = None;
    let queried = wait_until(WAIT, async || {
        let answer = ca
            .query()
            .table_name(table)
            .index_name("by_g")
            .key_condition_expression("g = :g")
            .expression_attribute_values(":g", s("green"))
            .send()
            .await;
        let found = answer.as_ref().is_ok_and(|q| {
            q.items()
                .iter()
                .any(|item| item.get("p") == Some(&s("gsi-a")))
        });
        last = Some(format!("{answer:?}"));
        found
    })
    .await;
    assert!(
        queried,
        "expected a Query of index by_g in A to return item gsi-a within {WAIT:?}; last: {last:?}"
    );

    let mut last = None;
    let ttl_followed = wait_until(WAIT, async || {
        let described = ca.describe_time_to_live().table_name(table).send().await;
        last = described.ok().and_then(|d| d.time_to_live_description);
        last.as_ref().is_some_and(|d| {
            d.attribute_name() == Some("exp")
                && matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        })
    })
    .await;
    assert!(
        ttl_followed,
        "expected A's DescribeTimeToLive to show TTL enabled on exp (set in B) within {WAIT:?}; \
         last: {last:?}"
    );

    let arn_a = table_arn(&ca, table).await;
    assert_eq!(
        tags_of(&cb, &arn_b).await.get("team").map(String::as_str),
        Some("blue"),
        "expected B's replica to carry the tag put in B"
    );
    let tags_a = tags_of(&ca, &arn_a).await;
    assert!(
        !tags_a.contains_key("team"),
        "expected a tag put in B not to show on A's replica (tags are per replica), got {tags_a:?}"
    );

    // Deleting the index and switching billing in A reach B too.
    ca.update_table()
        .table_name(table)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(
                    aws_sdk_dynamodb::types::DeleteGlobalSecondaryIndexAction::builder()
                        .index_name("by_g")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .expect("UpdateTable deleting the GSI in A succeeds");
    ca.update_table()
        .table_name(table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::Provisioned)
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(7)
                .write_capacity_units(9)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateTable switching A to provisioned billing succeeds");
    let mut last = None;
    let followed = wait_until(WAIT, async || {
        let described = cb.describe_table().table_name(table).send().await;
        last = described.ok().and_then(|d| d.table);
        last.as_ref().is_some_and(|t| {
            t.global_secondary_indexes().is_empty()
                && t.billing_mode_summary().and_then(|b| b.billing_mode())
                    == Some(&aws_sdk_dynamodb::types::BillingMode::Provisioned)
                && t.provisioned_throughput()
                    .and_then(|p| p.write_capacity_units())
                    == Some(9)
        })
    })
    .await;
    assert!(
        followed,
        "expected B to drop the GSI deleted in A and to switch to A's provisioned billing \
         within {WAIT:?}; last: {last:?}"
    );
}

/// Shared settings changed in two regions cut apart both take effect everywhere once the
/// partition heals: TTL enabled in one and an index added in the other (neither document
/// replaces the other whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_changed_in_two_partitioned_regions_both_take_effect() {
    let cluster = Cluster::start(node_binary(), &REGIONS[..2], &FAST).await;
    let (a, b) = (0, 1);
    let (ca, cb) = (cluster.client(a, OP_TIMEOUT), cluster.client(b, OP_TIMEOUT));
    let table = "partitioned_settings";
    create_table(&ca, table, false).await;
    replica_updates(&ca, table, vec![replica_create(REGIONS[b])])
        .await
        .expect("ReplicaUpdates Create succeeds");
    wait_for_group(&cluster, table, &[a, b]).await;

    cluster.link(a, b).cut();
    cluster.link(b, a).cut();
    ca.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("exp")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateTimeToLive in A succeeds while cut off");
    // Past an exchange period: each region's document is older than the other's change.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cb.update_table()
        .table_name(table)
        .attribute_definitions(attribute("g", ScalarAttributeType::S))
        .global_secondary_index_updates(gsi_create("by_g", "g"))
        .send()
        .await
        .expect("UpdateTable creating a GSI in B succeeds while cut off");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.heal_all();

    for (i, client) in [(a, &ca), (b, &cb)] {
        let mut last = None;
        let both = wait_until(WAIT, async || {
            let ttl = client
                .describe_time_to_live()
                .table_name(table)
                .send()
                .await;
            let ttl_on = ttl
                .ok()
                .and_then(|d| d.time_to_live_description)
                .is_some_and(|d| {
                    d.attribute_name() == Some("exp")
                        && matches!(
                            d.time_to_live_status(),
                            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                        )
                });
            let described = client.describe_table().table_name(table).send().await;
            let indexes = described
                .ok()
                .and_then(|d| d.table)
                .map(|t| t.global_secondary_indexes.unwrap_or_default())
                .unwrap_or_default();
            let indexed = indexes.iter().any(|i| i.index_name() == Some("by_g"));
            last = Some((ttl_on, indexed));
            ttl_on && indexed
        })
        .await;
        assert!(
            both,
            "expected {} to have TTL on exp (set in A) and index by_g (added in B) within \
             {WAIT:?} of the heal; last (TTL on, indexed): {last:?}",
            REGIONS[i]
        );
    }
}

/// Replicas leave the group through DeleteTable in their own region and through
/// ReplicaUpdates Delete from another; the rest of the group keeps replicating.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_leave_through_delete_table_and_replica_updates() {
    let cluster = Cluster::start(node_binary(), &REGIONS, &FAST).await;
    let (a, b, c) = (0, 1, 2);
    let table = "fleet";
    let ca = global_in_three(&cluster, table, OP_TIMEOUT).await;

    // DeleteTable in C: A and B stop listing C.
    cluster
        .client(c, OP_TIMEOUT)
        .delete_table()
        .table_name(table)
        .send()
        .await
        .expect("DeleteTable of C's replica succeeds");
    wait_for_group(&cluster, table, &[a, b]).await;
    put_value(&ca, table, "after-c", "still").await;
    wait_for_value(&cluster, b, table, "after-c", "still").await;
    assert_fails(
        cluster
            .client(c, OP_TIMEOUT)
            .describe_table()
            .table_name(table)
            .send()
            .await,
        "ResourceNotFoundException",
        None,
        "DescribeTable in C after its replica was deleted there (it must not come back)",
    );

    // ReplicaUpdates Delete{B} from A: B's table goes away, A stops listing B.
    replica_updates(&ca, table, vec![replica_delete(REGIONS[b])])
        .await
        .expect("ReplicaUpdates Delete of B's replica succeeds");
    let cb = cluster.client(b, OP_TIMEOUT);
    let mut last = None;
    let gone = wait_until(WAIT, async || {
        let answer = cb.describe_table().table_name(table).send().await;
        let gone = answer
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.code() == Some("ResourceNotFoundException"));
        last = Some(format!("{answer:?}"));
        gone
    })
    .await;
    assert!(
        gone,
        "expected DescribeTable in B to answer ResourceNotFoundException within {WAIT:?} after \
         ReplicaUpdates Delete{{B}}; last: {last:?}"
    );
    let mut last = None;
    let unlisted = wait_until(WAIT, async || {
        last = replicas_in(&cluster, a, table).await;
        last.as_ref().is_some_and(|r| !r.contains_key(REGIONS[b]))
    })
    .await;
    assert!(
        unlisted,
        "expected A's DescribeTable to stop listing B's replica within {WAIT:?}; last: {last:?}"
    );
    assert!(
        get_consistent(&ca, table, "after-c").await.is_some(),
        "expected A's own replica (and its items) to stay after removing B's"
    );
}

/// Version 2017.11.29: CreateGlobalTable over existing empty tables, DescribeGlobalTable,
/// ListGlobalTables, UpdateGlobalTable, and their errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_global_tables_answer_as_dynamodb() {
    let regions = [REGIONS[0], REGIONS[1]];
    let cluster = Cluster::start(node_binary(), &regions, &FAST).await;
    let (a, b) = (0, 1);
    let (ca, cb) = (cluster.client(a, OP_TIMEOUT), cluster.client(b, OP_TIMEOUT));
    let table = "legacy";
    create_table(&ca, table, false).await;
    create_table(&cb, table, false).await;
    let group = || {
        regions
            .iter()
            .map(|r| Replica::builder().region_name(*r).build())
            .collect::<Vec<_>>()
    };
    let created = ca
        .create_global_table()
        .global_table_name(table)
        .set_replication_group(Some(group()))
        .send()
        .await
        .expect("CreateGlobalTable over two empty tables of the same key schema succeeds");
    let expected: BTreeSet<String> = regions.iter().map(|r| r.to_string()).collect();
    let group_of = |description: Option<&aws_sdk_dynamodb::types::GlobalTableDescription>| {
        description
            .map(|d| {
                d.replication_group()
                    .iter()
                    .filter_map(|r| r.region_name().map(String::from))
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        group_of(created.global_table_description()),
        expected,
        "expected CreateGlobalTable to answer both regions in ReplicationGroup"
    );
    for client in [&ca, &cb] {
        let described = client
            .describe_global_table()
            .global_table_name(table)
            .send()
            .await
            .expect("DescribeGlobalTable of a 2017.11.29 global table succeeds");
        assert_eq!(
            group_of(described.global_table_description()),
            expected,
            "expected DescribeGlobalTable to answer both regions in ReplicationGroup"
        );
        assert_eq!(
            described
                .global_table_description()
                .and_then(|d| d.global_table_name()),
            Some(table),
            "expected DescribeGlobalTable to name the global table"
        );
    }

    // A 2019.11.21 global table and a plain table, which the legacy calls do not know.
    create_table(&ca, "modern", false).await;
    replica_updates(&ca, "modern", vec![replica_create(REGIONS[b])])
        .await
        .expect("ReplicaUpdates Create succeeds");
    create_table(&ca, "plain", false).await;

    let listed = ca
        .list_global_tables()
        .send()
        .await
        .expect("ListGlobalTables succeeds");
    let names: Vec<&str> = listed
        .global_tables()
        .iter()
        .filter_map(|g| g.global_table_name())
        .collect();
    assert!(
        names.contains(&table),
        "expected ListGlobalTables to list {table}, got {names:?}"
    );
    assert!(
        !names.contains(&"modern") && !names.contains(&"plain"),
        "expected ListGlobalTables to list only version 2017.11.29 global tables, got {names:?}"
    );
    let listed_group: BTreeSet<String> = listed
        .global_tables()
        .iter()
        .find(|g| g.global_table_name() == Some(table))
        .map(|g| {
            g.replication_group()
                .iter()
                .filter_map(|r| r.region_name().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        listed_group, expected,
        "expected ListGlobalTables to give {table}'s ReplicationGroup as both regions"
    );

    assert_fails(
        ca.create_global_table()
            .global_table_name(table)
            .set_replication_group(Some(group()))
            .send()
            .await,
        "GlobalTableAlreadyExistsException",
        None,
        "CreateGlobalTable of a table that is global already",
    );
    for other in ["modern", "plain"] {
        assert_fails(
            ca.describe_global_table()
                .global_table_name(other)
                .send()
                .await,
            "GlobalTableNotFoundException",
            None,
            &format!("DescribeGlobalTable of {other} (not a 2017.11.29 global table)"),
        );
    }
    assert_fails(
        ca.update_global_table()
            .global_table_name(table)
            .replica_updates(
                ReplicaUpdate::builder()
                    .create(
                        CreateReplicaAction::builder()
                            .region_name(REGIONS[b])
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await,
        "ReplicaAlreadyExistsException",
        None,
        "UpdateGlobalTable Create of an existing replica",
    );
    assert_fails(
        ca.update_global_table()
            .global_table_name(table)
            .replica_updates(
                ReplicaUpdate::builder()
                    .delete(
                        DeleteReplicaAction::builder()
                            .region_name(REGIONS[2])
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await,
        "ReplicaNotFoundException",
        None,
        "UpdateGlobalTable Delete of a replica that does not exist",
    );

    // Data flows both ways.
    put_value(&ca, table, "from-a", "1").await;
    put_value(&cb, table, "from-b", "2").await;
    wait_for_value(&cluster, b, table, "from-a", "1").await;
    wait_for_value(&cluster, a, table, "from-b", "2").await;
}

/// Posts a change batch to region `i`'s peer endpoint with the given headers; returns the
/// HTTP status.
async fn post_changes(endpoint: &str, table: &str, headers: &[(&str, &str)]) -> u16 {
    let item = |pairs: &[(&str, &str)]| -> BTreeMap<String, CoreValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), CoreValue::S(v.to_string())))
            .collect()
    };
    let body = ChangeBatch {
        changes: vec![WireChange {
            table: table.into(),
            keys: item(&[("p", "x")]),
            new_image: Some(item(&[("p", "x"), ("v", "evil")])),
            clock: 99_999_999_999_999_999,
            region: "eu-west-1".into(),
        }],
        ..ChangeBatch::default()
    }
    .encode();
    let mut request = reqwest::Client::new()
        .post(format!("{endpoint}/_tidemark/peer/changes"))
        .header("content-type", CHANGES_CONTENT_TYPE)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .expect("the peer endpoint answers")
        .status()
        .as_u16()
}

/// A peer request is applied only with a configured peer region and the group's secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peer_requests_need_a_configured_region_and_the_secret() {
    let regions = [REGIONS[0], REGIONS[1]];
    let cluster = Cluster::start(
        node_binary(),
        &regions,
        &["--durability", "buffer", "--peer-secret", "s3cret"],
    )
    .await;
    let (a, b) = (0, 1);
    let ca = cluster.client(a, OP_TIMEOUT);
    let table = "guarded";
    create_table(&ca, table, false).await;
    replica_updates(&ca, table, vec![replica_create(REGIONS[b])])
        .await
        .expect("ReplicaUpdates Create succeeds between nodes sharing the secret");
    wait_for_group(&cluster, table, &[a, b]).await;
    let endpoint = cluster.endpoint(a);
    let peer = REGIONS[b];

    let refused = [
        (
            "a configured peer region with a wrong secret",
            vec![
                ("x-tidemark-region", peer),
                ("x-tidemark-peer-secret", "wrong"),
            ],
        ),
        (
            "a configured peer region without a secret",
            vec![("x-tidemark-region", peer)],
        ),
        (
            "an unknown region with the right secret",
            vec![
                ("x-tidemark-region", "sa-east-1"),
                ("x-tidemark-peer-secret", "s3cret"),
            ],
        ),
    ];
    for (scenario, headers) in refused {
        let status = post_changes(&endpoint, table, &headers).await;
        assert_eq!(
            status, 403,
            "expected a peer change batch from {scenario} to be refused with 403"
        );
        let item = get_consistent(&ca, table, "x").await;
        assert!(
            item.is_none(),
            "expected a refused peer change batch ({scenario}) to write nothing, found {item:?}"
        );
    }

    let status = post_changes(
        &endpoint,
        table,
        &[
            ("x-tidemark-region", peer),
            ("x-tidemark-peer-secret", "s3cret"),
        ],
    )
    .await;
    assert_eq!(
        status, 200,
        "expected a peer change batch with a configured region and the right secret to be \
         accepted with 200"
    );
    let item = get_consistent(&ca, table, "x").await;
    assert_eq!(
        item.as_ref().and_then(|i| i.get("v")),
        Some(&s("evil")),
        "expected the accepted peer change to be written, found {item:?}"
    );
}

/// A node with a peer reached over the network and no secret refuses to start.
#[tokio::test]
async fn a_remote_peer_without_a_secret_stops_the_node_at_start_up() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let run = tokio::process::Command::new(node_binary())
        .arg("serve")
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .args(["--peer", "us-west-2=http://10.1.2.3:8000"])
        .env_remove("TIDEMARK_PEER_SECRET")
        .env_remove("TIDEMARK_PEERS")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("expected the node to exit by itself within 30 s")
        .expect("the node process runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a non-zero exit with a remote peer and no secret, got {}; stderr: {stderr}",
        output.status
    );
    assert!(
        stderr.contains("--peer-secret"),
        "expected stderr to mention --peer-secret, got: {stderr}"
    );
}
