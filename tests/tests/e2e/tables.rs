//! Table operations through the AWS SDK.

use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, ProvisionedThroughput, ScalarAttributeType, TableClass, Tag,
};
use tidemark_tests::TestNode;

use crate::common::{create_table, describe, error_code};

#[tokio::test]
async fn create_describe_list_delete() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "alpha", false).await;
    create_table(&client, "beta", true).await;

    let described = client
        .describe_table()
        .table_name("beta")
        .send()
        .await
        .unwrap();
    let table = described.table.unwrap();
    assert_eq!(table.table_status.unwrap().as_str(), "ACTIVE");
    assert_eq!(table.item_count, Some(0));
    assert_eq!(
        table.table_arn.unwrap(),
        "arn:aws:dynamodb:us-east-1:000000000000:table/beta"
    );
    assert_eq!(table.key_schema.unwrap().len(), 2);
    assert!(table.creation_date_time.is_some());

    let again = client.describe_table().table_name("alpha").send().await;
    assert!(again.is_ok());
    let duplicate = client
        .create_table()
        .table_name("alpha")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("p")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("p")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&duplicate), "ResourceInUseException");

    let page = client.list_tables().limit(1).send().await.unwrap();
    assert_eq!(page.table_names(), ["alpha"]);
    assert_eq!(page.last_evaluated_table_name(), Some("alpha"));
    let rest = client
        .list_tables()
        .exclusive_start_table_name("alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.table_names(), ["beta"]);
    assert_eq!(rest.last_evaluated_table_name(), None);

    let deleted = client
        .delete_table()
        .table_name("alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted
            .table_description
            .unwrap()
            .table_status
            .unwrap()
            .as_str(),
        "DELETING"
    );
    let gone = client
        .describe_table()
        .table_name("alpha")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&gone), "ResourceNotFoundException");
}

#[tokio::test]
async fn update_table_and_tags() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "gamma", false).await;
    let updated = client
        .update_table()
        .table_name("gamma")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(7)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let throughput = updated
        .table_description
        .unwrap()
        .provisioned_throughput
        .unwrap();
    assert_eq!(
        (
            throughput.read_capacity_units,
            throughput.write_capacity_units
        ),
        (Some(5), Some(7))
    );

    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/gamma";
    client
        .tag_resource()
        .resource_arn(arn)
        .tags(Tag::builder().key("team").value("cdc").build().unwrap())
        .tags(Tag::builder().key("tier").value("1").build().unwrap())
        .send()
        .await
        .unwrap();
    client
        .untag_resource()
        .resource_arn(arn)
        .tag_keys("tier")
        .send()
        .await
        .unwrap();
    let tags = client
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(tags, [("team".to_string(), "cdc".to_string())]);
}

#[tokio::test]
async fn tables_survive_a_restart() {
    let mut node = TestNode::start().await;
    create_table(&node.client(), "durable_table", true).await;
    node.restart().await;
    let table = node
        .client()
        .describe_table()
        .table_name("durable_table")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(table.key_schema.unwrap().len(), 2);
}

/// Every missing member of a CreateTable is reported in one error, entries' members in the
/// order DynamoDB reports them; a value with only unknown members is an empty value.
#[tokio::test]
async fn malformed_requests_report_every_violation_as_dynamodb_does() {
    use tidemark_tests::raw_request;
    let node = TestNode::start().await;
    let refused = raw_request(
        &node.endpoint(),
        Some("DynamoDB_20120810.CreateTable"),
        r#"{"TableName": "tbl", "KeySchema": [{}], "AttributeDefinitions": [{}],
            "BillingMode": "PROVISIONED", "ProvisionedThroughput": {}}"#,
    )
    .await;
    assert_eq!(refused.error_name(), "ValidationException");
    let null = |at: &str| {
        format!("Value null at '{at}' failed to satisfy constraint: Member must not be null")
    };
    let expected = [
        "keySchema.1.member.attributeName",
        "keySchema.1.member.keyType",
        "attributeDefinitions.1.member.attributeType",
        "attributeDefinitions.1.member.attributeName",
        "provisionedThroughput.writeCapacityUnits",
        "provisionedThroughput.readCapacityUnits",
    ]
    .map(null)
    .join("; ");
    assert_eq!(
        refused.json()["message"],
        format!("6 validation errors detected: {expected}").as_str()
    );
    // A bad name is reported alone (nubo-db/dynamodb-conformance's validation-ordering
    // createTable.test.ts, recorded against AWS).
    let bad_name = raw_request(
        &node.endpoint(),
        Some("DynamoDB_20120810.CreateTable"),
        r#"{"TableName": "t", "KeySchema": [], "AttributeDefinitions": []}"#,
    )
    .await;
    assert_eq!(
        bad_name.json()["message"],
        "1 validation error detected: Value 't' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"
    );

    let put = raw_request(
        &node.endpoint(),
        Some("DynamoDB_20120810.PutItem"),
        r#"{"TableName": "a", "ReturnConsumedCapacity": "ALL", "ReturnValues": "EVERYTHING"}"#,
    )
    .await;
    assert_eq!(
        put.json()["message"],
        "4 validation errors detected: \
         Value 'EVERYTHING' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]; \
         Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; \
         Value 'a' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3; \
         Value null at 'item' failed to satisfy constraint: Member must not be null"
    );

    create_table(&node.client(), "values", false).await;
    let empty = raw_request(
        &node.endpoint(),
        Some("DynamoDB_20120810.PutItem"),
        r#"{"TableName": "values", "Item": {"p": {"S": "k"}, "x": {"dog": "cat"}}}"#,
    )
    .await;
    assert_eq!(empty.error_name(), "ValidationException");
    assert!(
        empty.json()["message"]
            .as_str()
            .unwrap()
            .contains("Supplied AttributeValue is empty"),
        "{}",
        empty.json()
    );
}

#[tokio::test]
async fn descriptions_carry_what_dynamodb_sends_today() {
    // Sources: localstack's snapshots of AWS's answers (test_table_crud,
    // test_gsi_with_billing_mode, test_table_warm_throughput) and the Alternator suite's
    // test_describe_table.py, both checked against AWS.
    let node = TestNode::start().await;
    let client = node.client();
    let created = client
        .create_table()
        .table_name("provisioned")
        .key_schema(crate::common::key_element("p", KeyType::Hash))
        .attribute_definitions(crate::common::attribute("p", ScalarAttributeType::S))
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    // A table only ever provisioned has no BillingModeSummary; CreateTable has no warm rates.
    assert_eq!(created.billing_mode_summary, None);
    assert_eq!(created.warm_throughput, None);
    let described = describe(&client, "provisioned").await;
    assert_eq!(described.billing_mode_summary, None);
    let warm = described.warm_throughput.unwrap();
    assert_eq!(
        (warm.read_units_per_second, warm.write_units_per_second),
        (Some(5), Some(5))
    );
    assert_eq!(warm.status.unwrap().as_str(), "ACTIVE");

    // Switched to on-demand: the summary, dated at the switch, and on-demand's warm rates.
    let updated = client
        .update_table()
        .table_name("provisioned")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    let summary = updated.billing_mode_summary.unwrap();
    assert_eq!(summary.billing_mode, Some(BillingMode::PayPerRequest));
    let switched = summary.last_update_to_pay_per_request_date_time.unwrap();
    assert!(switched >= created.creation_date_time.unwrap());
    let warm = updated.warm_throughput.unwrap();
    assert_eq!(
        (warm.read_units_per_second, warm.write_units_per_second),
        (Some(12_000), Some(4_000))
    );
    // Back to provisioned: the date of the last switch stays, and so do the warm rates.
    client
        .update_table()
        .table_name("provisioned")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(3, 3))
        .send()
        .await
        .unwrap();
    let described = describe(&client, "provisioned").await;
    let summary = described.billing_mode_summary.unwrap();
    assert_eq!(summary.billing_mode, Some(BillingMode::Provisioned));
    assert_eq!(
        summary.last_update_to_pay_per_request_date_time,
        Some(switched)
    );
    assert_eq!(
        described.warm_throughput.unwrap().read_units_per_second,
        Some(12_000)
    );

    // Created on-demand: the summary without a date in CreateTable's answer, dated at the
    // creation afterwards.
    let created = client
        .create_table()
        .table_name("on_demand")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(crate::common::key_element("p", KeyType::Hash))
        .attribute_definitions(crate::common::attribute("p", ScalarAttributeType::S))
        .deletion_protection_enabled(true)
        .table_class(TableClass::StandardInfrequentAccess)
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    let summary = created.billing_mode_summary.unwrap();
    assert_eq!(summary.billing_mode, Some(BillingMode::PayPerRequest));
    assert_eq!(summary.last_update_to_pay_per_request_date_time, None);
    assert_eq!(created.deletion_protection_enabled, Some(true));
    assert_eq!(
        created.table_class_summary.unwrap().table_class,
        Some(TableClass::StandardInfrequentAccess)
    );
    let described = describe(&client, "on_demand").await;
    assert_eq!(
        described
            .billing_mode_summary
            .unwrap()
            .last_update_to_pay_per_request_date_time,
        described.creation_date_time
    );

    // Deletion protection refuses DeleteTable until it is turned off.
    let refused = client.delete_table().table_name("on_demand").send().await;
    let error = refused.unwrap_err();
    assert_eq!(error_code(&error), "ValidationException");
    assert_eq!(
        error.as_service_error().and_then(|e| e.meta().message()),
        Some(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
        )
    );
    client
        .update_table()
        .table_name("on_demand")
        .deletion_protection_enabled(false)
        .send()
        .await
        .unwrap();
    client
        .delete_table()
        .table_name("on_demand")
        .send()
        .await
        .unwrap();
}

fn throughput(read: i64, write: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .unwrap()
}
