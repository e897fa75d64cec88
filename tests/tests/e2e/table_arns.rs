//! A table's ARN wherever a table name is taken (issue 29, family 11): DynamoDB accepts it as
//! `TableName` in every call but CreateTable, echoes it where the request's name is echoed
//! (ConsumedCapacity, the batch calls' maps), and names the table itself in descriptions.

use aws_sdk_dynamodb::types::{
    Get, KeysAndAttributes, Put, PutRequest, ReturnConsumedCapacity, TimeToLiveSpecification,
    TransactGetItem, TransactWriteItem, WriteRequest,
};
use tidemark_tests::TestNode;

use crate::common::{assert_fails_with, create_table, item, s};

#[tokio::test]
async fn every_table_call_takes_the_tables_arn_for_its_name() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "arns", false).await;
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/arns";

    let put = client
        .put_item()
        .table_name(arn)
        .set_item(Some(item(&[("p", s("a")), ("v", s("1"))])))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    // The ARN as given comes back where DynamoDB echoes the name (its API reference).
    assert_eq!(
        put.consumed_capacity.unwrap().table_name.as_deref(),
        Some(arn)
    );
    let got = client
        .get_item()
        .table_name(arn)
        .set_key(Some(item(&[("p", s("a"))])))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item.unwrap()["v"], s("1"));
    client
        .update_item()
        .table_name(arn)
        .set_key(Some(item(&[("p", s("a"))])))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", s("2"))
        .send()
        .await
        .unwrap();
    let queried = client
        .query()
        .table_name(arn)
        .key_condition_expression("p = :p")
        .expression_attribute_values(":p", s("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(queried.items.unwrap()[0]["v"], s("2"));
    assert_eq!(client.scan().table_name(arn).send().await.unwrap().count, 1);

    client
        .batch_write_item()
        .request_items(
            arn,
            vec![
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item(&[("p", s("b"))])))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            ],
        )
        .send()
        .await
        .unwrap();
    let batch = client
        .batch_get_item()
        .request_items(
            arn,
            KeysAndAttributes::builder()
                .keys(item(&[("p", s("a"))]))
                .keys(item(&[("p", s("b"))]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(batch.responses.unwrap()[arn].len(), 2);

    client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(arn)
                        .set_item(Some(item(&[("p", s("c"))])))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let read = client
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name(arn)
                        .set_key(Some(item(&[("p", s("c"))])))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(read.responses.unwrap()[0].item.is_some());

    // Table calls name the table itself in what they answer.
    let described = client
        .describe_table()
        .table_name(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.table.unwrap().table_name.as_deref(), Some("arns"));
    client
        .update_time_to_live()
        .table_name(arn)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description
            .unwrap()
            .attribute_name
            .as_deref(),
        Some("expires")
    );
    client
        .describe_continuous_backups()
        .table_name(arn)
        .send()
        .await
        .unwrap();
    let deleted = client.delete_table().table_name(arn).send().await.unwrap();
    assert_eq!(
        deleted.table_description.unwrap().table_name.as_deref(),
        Some("arns")
    );
    assert_fails_with(
        client.describe_table().table_name("arns").send().await,
        "ResourceNotFoundException",
    );
}

#[tokio::test]
async fn an_arn_of_another_account_or_region_or_resource_is_refused() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "arns", false).await;
    let get = |table: &str| {
        client
            .get_item()
            .table_name(table)
            .set_key(Some(item(&[("p", s("a"))])))
            .send()
    };
    // Sources: aws-controllers-k8s/dynamodb-controller's record of AWS's answers
    // (docs/api-quirks DDB-TABLE-011, 2026).
    assert_fails_with(
        get("arn:aws:dynamodb:us-east-1:111111111111:table/arns").await,
        "AccessDeniedException",
    );
    assert_fails_with(
        get("arn:aws:dynamodb:eu-west-1:000000000000:table/arns").await,
        "ValidationException",
    );
    assert_fails_with(
        get("arn:aws:dynamodb:us-east-1:000000000000:table/arns/index/by_v").await,
        "ValidationException",
    );
    assert_fails_with(
        get("arn:aws:dynamodb:us-east-1:000000000000:table/missing").await,
        "ResourceNotFoundException",
    );
}
