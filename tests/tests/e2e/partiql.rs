//! PartiQL through the AWS SDK: ExecuteStatement (SELECT, INSERT, UPDATE, DELETE with
//! parameters, paging, indexes and RETURNING), ExecuteTransaction, BatchExecuteStatement,
//! DynamoDB's errors, and PartiQL writes in the table's stream.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementOutput;
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest, BillingMode,
    GlobalSecondaryIndex, KeyType, ParameterizedStatement, Projection, ProjectionType,
    ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    StreamViewType,
};
use tidemark_tests::TestNode;

use crate::common::{
    assert_fails_with, attribute, create_stream_table, error_code, event_name, image, item,
    key_element, n, read_stream, s,
};

type Item = HashMap<String, AttributeValue>;

/// Creates `name` with partition key `p` (S), sort key `c` (N) and a global index `by_g` on
/// `g` (S) projecting everything.
async fn create_partiql_table(client: &Client, name: &str) {
    create_partiql_table_projecting(client, name, ProjectionType::All).await;
}

/// [`create_partiql_table`] with `by_g` projecting `projection`.
async fn create_partiql_table_projecting(client: &Client, name: &str, projection: ProjectionType) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .key_schema(key_element("c", KeyType::Range))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("c", ScalarAttributeType::N))
        .attribute_definitions(attribute("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_g")
                .key_schema(key_element("g", KeyType::Hash))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

async fn run(
    client: &Client,
    statement: &str,
    parameters: Vec<AttributeValue>,
) -> ExecuteStatementOutput {
    client
        .execute_statement()
        .statement(statement)
        .set_parameters((!parameters.is_empty()).then_some(parameters))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e:?}"))
}

/// The values of attribute `name` in `items`, as numbers' texts or strings.
fn column(items: &[Item], name: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| match i.get(name) {
            Some(AttributeValue::N(v) | AttributeValue::S(v)) => v.clone(),
            other => panic!("{name} is {other:?}"),
        })
        .collect()
}

/// Inserts `p`, `c` = 0..count with `g` = "g" + p and `v` = c.
async fn seed(client: &Client, table: &str, p: &str, count: usize) {
    for c in 0..count {
        run(
            client,
            &format!("INSERT INTO \"{table}\" VALUE {{'p': ?, 'c': ?, 'g': ?, 'v': {c}}}"),
            vec![s(p), n(&c.to_string()), s(&format!("g{p}"))],
        )
        .await;
    }
}

#[tokio::test]
async fn statements_read_and_write_items() {
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table(&client, "music").await;

    // INSERT with parameters and every kind of literal.
    run(
        &client,
        "INSERT INTO \"music\" VALUE {'p': ?, 'c': 1, 'name': 'it''s', 'n': -1.50, 'ok': TRUE, \
         'nothing': NULL, 'tags': <<'a', 'b'>>, 'nums': <<1, 2>>, 'l': [1, 'x'], 'm': {'k': ?}}",
        vec![s("a"), AttributeValue::B(b"bytes".to_vec().into())],
    )
    .await;
    let got = client
        .get_item()
        .table_name("music")
        .key("p", s("a"))
        .key("c", n("1"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(got["name"], s("it's"));
    assert_eq!(got["n"], n("-1.5"));
    assert_eq!(got["ok"], AttributeValue::Bool(true));
    assert_eq!(got["nothing"], AttributeValue::Null(true));
    assert_eq!(
        got["tags"],
        AttributeValue::Ss(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        got["nums"],
        AttributeValue::Ns(vec!["1".into(), "2".into()])
    );
    assert_eq!(got["l"], AttributeValue::L(vec![n("1"), s("x")]));
    assert_eq!(
        got["m"],
        AttributeValue::M(item(&[("k", AttributeValue::B(b"bytes".to_vec().into()))]))
    );

    // SELECT by key, naming nested paths: each value comes under the name of its last step
    // (with any index), as DynamoDB answers (nubo-db/dynamodb-conformance's
    // executeStatement.test.ts, recorded against AWS, for `a.b`; DynamoDB Local for `a[1]`).
    let out = run(
        &client,
        "SELECT name, l[1], m.k FROM \"music\" WHERE p = ? AND c = 1",
        vec![s("a")],
    )
    .await;
    assert_eq!(
        out.items.unwrap(),
        vec![item(&[
            ("name", s("it's")),
            ("l[1]", s("x")),
            ("k", AttributeValue::B(b"bytes".to_vec().into())),
        ])]
    );

    // UPDATE: SET, arithmetic, list_append, set_add, set_delete, REMOVE, RETURNING.
    let out = run(
        &client,
        "UPDATE \"music\" SET n = n + 2, l = list_append(l, [?]) SET tags = set_add(tags, <<'c'>>) \
         SET nums = set_delete(nums, <<1>>) REMOVE ok, nothing WHERE p = 'a' AND c = 1 \
         RETURNING MODIFIED NEW *",
        vec![n("9")],
    )
    .await;
    let modified = &out.items.unwrap()[0];
    assert_eq!(modified["n"], n("0.5"));
    assert_eq!(
        modified["l"],
        AttributeValue::L(vec![n("1"), s("x"), n("9")])
    );
    assert_eq!(
        modified["tags"],
        AttributeValue::Ss(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(modified["nums"], AttributeValue::Ns(vec!["2".into()]));
    assert!(
        !modified.contains_key("name"),
        "only what changed: {modified:?}"
    );
    let out = run(
        &client,
        "UPDATE \"music\" SET name = 'new' WHERE p = 'a' AND c = 1 RETURNING ALL OLD *",
        vec![],
    )
    .await;
    let old = &out.items.unwrap()[0];
    assert_eq!(old["name"], s("it's"));
    assert!(!old.contains_key("ok"));
    let out = run(
        &client,
        "UPDATE \"music\" SET v = 1 WHERE p = 'a' AND c = 1 RETURNING MODIFIED OLD *",
        vec![],
    )
    .await;
    assert_eq!(out.items.unwrap(), Vec::<Item>::new(), "v did not exist");
    let out = run(
        &client,
        "UPDATE \"music\" SET v = 2 WHERE p = 'a' AND c = 1 AND name = 'new' RETURNING ALL NEW *",
        vec![],
    )
    .await;
    assert_eq!(out.items.unwrap()[0]["v"], n("2"));

    // A condition that fails, with the old item on request.
    let failed = client
        .execute_statement()
        .statement("UPDATE \"music\" SET v = 3 WHERE p = 'a' AND c = 1 AND v > 5")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&failed), "ConditionalCheckFailedException");
    let service = failed.into_service_error();
    let returned = match &service {
        aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementError::ConditionalCheckFailedException(e) => e.item.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(returned.unwrap()["v"], n("2"));

    // DELETE with RETURNING, then of a missing item (which succeeds).
    let out = run(
        &client,
        "DELETE FROM \"music\" WHERE p = ? AND c = ? RETURNING ALL OLD *",
        vec![s("a"), n("1")],
    )
    .await;
    assert_eq!(out.items.unwrap()[0]["name"], s("new"));
    let out = run(
        &client,
        "DELETE FROM \"music\" WHERE p = 'a' AND c = 1",
        vec![],
    )
    .await;
    assert_eq!(out.items.unwrap(), Vec::<Item>::new());
    let out = run(&client, "SELECT * FROM \"music\" WHERE p = 'a'", vec![]).await;
    assert_eq!(out.items.unwrap(), Vec::<Item>::new());

    // Consumed capacity on request.
    let out = client
        .execute_statement()
        .statement("INSERT INTO \"music\" VALUE {'p': 'cap', 'c': 0}")
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let capacity = out.consumed_capacity.unwrap();
    assert_eq!(capacity.table_name.as_deref(), Some("music"));
    assert_eq!(capacity.capacity_units, Some(1.0));
}

#[tokio::test]
async fn selects_query_scan_page_and_read_indexes() {
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table(&client, "pages").await;
    seed(&client, "pages", "a", 6).await;
    seed(&client, "pages", "b", 3).await;

    // Key conditions on the sort key.
    let sort_keys = |out: ExecuteStatementOutput| column(&out.items.unwrap(), "c");
    for (condition, expected) in [
        ("c = 2", vec!["2"]),
        ("c < 2", vec!["0", "1"]),
        ("c <= 2", vec!["0", "1", "2"]),
        ("c > 3", vec!["4", "5"]),
        ("2 < c", vec!["3", "4", "5"]),
        ("c >= 4", vec!["4", "5"]),
        ("c BETWEEN 1 AND 3", vec!["1", "2", "3"]),
        ("c > 1 AND c < 4", vec!["2", "3"]),
        ("v <> 3 AND c < 5 AND NOT v = 0", vec!["1", "2", "4"]),
    ] {
        let out = run(
            &client,
            &format!("SELECT * FROM \"pages\" WHERE p = 'a' AND {condition}"),
            vec![],
        )
        .await;
        assert_eq!(sort_keys(out), expected, "{condition}");
    }
    let out = run(
        &client,
        "SELECT c FROM \"pages\" WHERE p = 'a' AND c >= 3 ORDER BY c DESC",
        vec![],
    )
    .await;
    assert_eq!(sort_keys(out), vec!["5", "4", "3"]);

    // IN over partition keys, filters on other attributes.
    let out = run(
        &client,
        "SELECT * FROM \"pages\" WHERE p IN ['b', 'a'] AND (v = 1 OR v = 2) AND g IS NOT MISSING \
         AND attribute_type(v, 'N') AND begins_with(g, 'g') AND size(g) = 2 AND x IS MISSING",
        vec![],
    )
    .await;
    assert_eq!(column(&out.items.unwrap(), "p"), vec!["b", "b", "a", "a"]);

    let out = run(
        &client,
        "SELECT p FROM \"pages\" WHERE (p = 'b' OR p = 'a') AND c = 1",
        vec![],
    )
    .await;
    assert_eq!(column(&out.items.unwrap(), "p"), vec!["b", "a"]);

    // Paging a query over two partitions with Limit and NextToken.
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = client
            .execute_statement()
            .statement("SELECT p, c FROM \"pages\" WHERE p IN ['a', 'b']")
            .limit(4)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        let items = out.items.unwrap();
        assert!(items.len() <= 4);
        let (p, c) = (column(&items, "p"), column(&items, "c"));
        seen.extend(p.iter().zip(&c).map(|(p, c)| format!("{p}{c}")));
        token = out.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1", "b2"]);
    assert!(pages >= 3, "{pages} pages");

    // A SELECT without a key condition scans, and pages like Scan.
    let mut scanned = 0;
    let mut token = None;
    loop {
        let out = client
            .execute_statement()
            .statement("SELECT * FROM \"pages\" WHERE v >= 1")
            .limit(2)
            .consistent_read(true)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        scanned += out.items.unwrap().len();
        token = out.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(scanned, 7);

    // A token of another statement, and a token that is not one.
    let first = client
        .execute_statement()
        .statement("SELECT * FROM \"pages\"")
        .limit(1)
        .send()
        .await
        .unwrap();
    let token = first.next_token.unwrap();
    assert_fails_with(
        client
            .execute_statement()
            .statement("SELECT * FROM \"pages\" WHERE v = 1")
            .next_token(token)
            .send()
            .await,
        "ValidationException",
    );
    assert_fails_with(
        client
            .execute_statement()
            .statement("SELECT * FROM \"pages\"")
            .next_token("not-a-token")
            .send()
            .await,
        "ValidationException",
    );

    // SELECT on a global secondary index.
    let out = run(
        &client,
        "SELECT p, c FROM \"pages\".\"by_g\" WHERE g = ? AND v > 0",
        vec![s("gb")],
    )
    .await;
    let mut found = column(&out.items.unwrap(), "c");
    found.sort();
    assert_eq!(found, vec!["1", "2"]);
    // Its capacity is the index's, as a Query of the index reports it.
    let detailed = client
        .execute_statement()
        .statement("SELECT p FROM \"pages\".\"by_g\" WHERE g = 'gb'")
        .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let consumed = detailed.consumed_capacity().unwrap();
    assert!(consumed.table().is_none());
    assert_eq!(
        consumed.global_secondary_indexes().unwrap()["by_g"].capacity_units(),
        consumed.capacity_units()
    );
    assert_fails_with(
        client
            .execute_statement()
            .statement("SELECT * FROM \"pages\".\"nope\" WHERE g = 'ga'")
            .send()
            .await,
        "ValidationException",
    );
}

#[tokio::test]
async fn statement_errors_are_dynamodbs() {
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table(&client, "errs").await;
    seed(&client, "errs", "a", 1).await;
    let failure = |statement: &'static str, parameters: Vec<AttributeValue>| {
        let client = client.clone();
        async move {
            let e = client
                .execute_statement()
                .statement(statement)
                .set_parameters((!parameters.is_empty()).then_some(parameters))
                .send()
                .await
                .unwrap_err();
            let message = e
                .as_service_error()
                .and_then(|s| s.meta().message().map(str::to_string));
            (error_code(&e), message.unwrap_or_default())
        }
    };
    let validation = |message: &str| ("ValidationException".to_string(), message.to_string());
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE p = 'a' foo", vec![]).await,
        validation(
            "Statement wasn't well formed, can't be processed: Unexpected token after expression"
        )
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE", vec![]).await,
        validation("Statement wasn't well formed, can't be processed: Unexpected term")
    );
    assert_eq!(
        failure("INSERT INTO \"errs\" VALUE {'p': 'a', 'c': 0}", vec![]).await,
        (
            "DuplicateItemException".to_string(),
            "Duplicate primary key exists in table".to_string()
        )
    );
    assert_eq!(
        failure("UPDATE \"errs\" SET v = 1 WHERE p = 'zz' AND c = 0", vec![]).await,
        (
            "ConditionalCheckFailedException".to_string(),
            "The conditional request failed".to_string()
        )
    );
    assert_eq!(
        failure("UPDATE \"errs\" SET v = 1 WHERE p = 'a'", vec![]).await,
        validation("Where clause does not contain a mandatory equality on all key attributes")
    );
    assert_eq!(
        failure("DELETE FROM \"errs\" WHERE p = 'a' OR c = 0", vec![]).await,
        validation("Where clause does not contain a mandatory equality on all key attributes")
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE p = ? AND c = ?", vec![s("a")]).await,
        validation("Number of parameters in request and statement don't match.")
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE p = ?", vec![s("a"), s("b")]).await,
        validation("Number of parameters in request and statement don't match.")
    );
    assert_eq!(
        failure("SELECT * FROM \"missing\" WHERE p = 'a'", vec![]).await,
        (
            "ResourceNotFoundException".to_string(),
            "Requested resource not found".to_string()
        )
    );
    assert_eq!(
        failure(
            "EXISTS(SELECT * FROM \"errs\" WHERE p = 'a' AND c = 0)",
            vec![]
        )
        .await,
        validation("EXISTS can only be used in ExecuteTransaction write requests.")
    );
    assert_eq!(
        failure(
            "UPDATE \"errs\" SET p = 'b' WHERE p = 'a' AND c = 0",
            vec![]
        )
        .await,
        validation(
            "One or more parameter values were invalid: Cannot update attribute p. This attribute is part of the key"
        )
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" AS e WHERE p = 'a'", vec![]).await,
        validation("Aliasing is not supported")
    );
    // Sources for the rest: nubo-db/dynamodb-conformance's partiqlGrammar.test.ts and
    // partiqlIndexQualifier.test.ts, run against AWS (October 2026).
    assert_eq!(
        failure("SELECT * FROM \"errs\".\"\" WHERE p = 'a'", vec![]).await,
        validation("Path component cannot be an empty string")
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE p = 'a' AND x IS FOO", vec![]).await,
        validation("Statement wasn't well formed, can't be processed: Expected type name")
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE p = 'a' # note", vec![]).await,
        validation("Statement wasn't well formed, can't be processed: ")
    );
    assert_eq!(
        failure("INSERT INTO \"errs\" t VALUE {'p': 'x', 'c': 1}", vec![]).await,
        validation(
            "Statement wasn't well formed, can't be processed: Unexpected token after expression"
        )
    );
    assert_eq!(
        failure("x IS DOUBLE PRECISION", vec![]).await,
        validation("Unsupported operation: IsType")
    );
    assert_eq!(
        failure("SELECT * FROM \"errs\" WHERE IS NULL", vec![]).await,
        validation("Statement wasn't well formed, can't be processed: Unexpected operator")
    );
    assert_eq!(
        failure(
            "SELECT * FROM \"errs\" WHERE p = 'a' AND v = 1e2147483648",
            vec![]
        )
        .await,
        validation("Statement wasn't well formed, can't be processed: ")
    );
    assert_eq!(
        failure(
            "INSERT INTO \"errs\" VALUE {'p': 'b', 'c': 0, 'm': {'x': 1e126}}",
            vec![]
        )
        .await,
        validation(
            "Number overflow. Attempting to store a number with magnitude larger than supported range under root.x"
        )
    );
    assert_eq!(
        failure("FROM \"errs\" SET v = 1", vec![]).await,
        validation("Where clause does not contain a mandatory equality on all key attributes")
    );
    assert_eq!(
        failure("FROM \"errs\" SET v = 1 WHERE p = 'a' AND c = 0", vec![]).await,
        validation(
            "Statement wasn't well formed, can't be processed: Unexpected token after expression"
        )
    );
}

#[tokio::test]
async fn from_first_updates_and_type_tests_run_as_dynamodb_runs_them() {
    // Source: nubo-db/dynamodb-conformance's fromFirstUpdate.test.ts and
    // whereFunctions.test.ts, run against AWS in four regions (October 2026).
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table(&client, "fromfirst").await;
    seed(&client, "fromfirst", "a", 1).await;
    let out = run(
        &client,
        "from \"fromfirst\" where p = ? and c = 0 set flag = true remove g returning all new *",
        vec![s("a")],
    )
    .await;
    let updated = &out.items.unwrap()[0];
    assert_eq!(updated["flag"], AttributeValue::Bool(true));
    assert!(!updated.contains_key("g"));
    // A key that names no item fails its condition and creates nothing.
    let missing = client
        .execute_statement()
        .statement("FROM \"fromfirst\" WHERE p = 'none' AND c = 0 SET v = 1")
        .send()
        .await;
    assert_fails_with(missing, "ConditionalCheckFailedException");
    let keys = |condition: &'static str| {
        let client = client.clone();
        async move {
            let statement = format!("SELECT p FROM \"fromfirst\" WHERE p = 'a' AND {condition}");
            run(&client, &statement, vec![]).await.items.unwrap().len()
        }
    };
    assert_eq!(keys("flag IS BOOL").await, 1);
    assert_eq!(keys("p IS STRING").await, 1);
    assert_eq!(keys("v IS STRING").await, 0);
    assert_eq!(keys("v IS DECIMAL").await, 1);
    assert_eq!(keys("p IS BOOL").await, 0);
    // A condition function compared with a boolean.
    assert_eq!(keys("attribute_exists(flag) = true").await, 1);
    assert_eq!(keys("true = attribute_exists(g)").await, 0);
    assert_eq!(keys("attribute_exists(g) = false").await, 1);
    assert_eq!(keys("attribute_exists(flag) <> true").await, 0);
    // OR branches of one partition: one bounding the sort key beside one naming it without
    // bounding it runs, as DynamoDB runs it (whereOverlap.test.ts).
    assert_eq!(keys("c <> 0 OR p = 'a' AND c = 0").await, 1);
}

#[tokio::test]
async fn transactions_of_statements() {
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table(&client, "txn").await;
    seed(&client, "txn", "a", 3).await;
    let statement = |text: &str, parameters: Vec<AttributeValue>| {
        ParameterizedStatement::builder()
            .statement(text)
            .set_parameters((!parameters.is_empty()).then_some(parameters))
            .build()
            .unwrap()
    };

    // Writes and a condition check, all applied.
    let transaction = || {
        client
            .execute_transaction()
            .transact_statements(statement(
                "INSERT INTO \"txn\" VALUE {'p': ?, 'c': 0}",
                vec![s("new")],
            ))
            .transact_statements(statement(
                "UPDATE \"txn\" SET v = v + 10 WHERE p = 'a' AND c = 0",
                vec![],
            ))
            .transact_statements(statement(
                "DELETE FROM \"txn\" WHERE p = 'a' AND c = 1",
                vec![],
            ))
            .client_request_token("token-1")
            .send()
    };
    // A transaction of writes answers an empty `Responses` (localstack's
    // test_dynamodb_execute_transaction snapshot, recorded against AWS).
    let written = transaction().await.unwrap();
    assert_eq!(written.responses, Some(Vec::new()));
    let out = run(
        &client,
        "SELECT * FROM \"txn\" WHERE p IN ['a', 'new']",
        vec![],
    )
    .await;
    let items = out.items.unwrap();
    assert_eq!(column(&items, "p"), vec!["a", "a", "new"]);
    assert_eq!(column(&items, "c"), vec!["0", "2", "0"]);
    assert_eq!(items[0]["v"], n("10"));

    // The same token with the same statements answers again without running them.
    transaction().await.unwrap();
    let out = run(
        &client,
        "SELECT v FROM \"txn\" WHERE p = 'a' AND c = 0",
        vec![],
    )
    .await;
    assert_eq!(out.items.unwrap()[0]["v"], n("10"));

    // A cancellation: a duplicate INSERT, a failed EXISTS, and nothing applied.
    let cancelled = client
        .execute_transaction()
        .transact_statements(statement(
            "UPDATE \"txn\" SET v = 0 WHERE p = 'a' AND c = 0",
            vec![],
        ))
        .transact_statements(statement(
            "INSERT INTO \"txn\" VALUE {'p': 'new', 'c': 0}",
            vec![],
        ))
        .transact_statements(statement(
            "EXISTS(SELECT * FROM \"txn\" WHERE p = 'a' AND c = 2 AND v = 99)",
            vec![],
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&cancelled), "TransactionCanceledException");
    let reasons = match cancelled.into_service_error() {
        aws_sdk_dynamodb::operation::execute_transaction::ExecuteTransactionError::TransactionCanceledException(e) => e.cancellation_reasons.unwrap(),
        other => panic!("{other:?}"),
    };
    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_deref().unwrap()).collect();
    assert_eq!(codes, ["None", "DuplicateItem", "ConditionalCheckFailed"]);
    let out = run(
        &client,
        "SELECT v FROM \"txn\" WHERE p = 'a' AND c = 0",
        vec![],
    )
    .await;
    assert_eq!(out.items.unwrap()[0]["v"], n("10"));

    // A transaction of reads.
    let out = client
        .execute_transaction()
        .transact_statements(statement(
            "SELECT v FROM \"txn\" WHERE p = 'a' AND c = 0",
            vec![],
        ))
        .transact_statements(statement(
            "SELECT * FROM \"txn\" WHERE p = ? AND c = 5",
            vec![s("a")],
        ))
        .send()
        .await
        .unwrap();
    let responses = out.responses.unwrap();
    assert_eq!(responses[0].item.as_ref().unwrap()["v"], n("10"));
    assert_eq!(responses[1].item, None);

    // Reads and writes do not mix; reads must name a key.
    let mixed = client
        .execute_transaction()
        .transact_statements(statement(
            "SELECT * FROM \"txn\" WHERE p = 'a' AND c = 0",
            vec![],
        ))
        .transact_statements(statement(
            "DELETE FROM \"txn\" WHERE p = 'a' AND c = 0",
            vec![],
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        mixed.as_service_error().and_then(|e| e.meta().message()),
        Some(
            "ExecuteTransaction API does not support both read and write operations in the same request."
        )
    );
    let not_by_key = client
        .execute_transaction()
        .transact_statements(statement("SELECT * FROM \"txn\" WHERE p = 'a'", vec![]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        not_by_key
            .as_service_error()
            .and_then(|e| e.meta().message()),
        Some(
            "Validation failed in TransactStatements[0]: Select statements within ExecuteTransaction must specify the primary key in the where clause."
        )
    );
}

#[tokio::test]
async fn batches_of_statements_report_each_error() {
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table(&client, "batch").await;
    seed(&client, "batch", "a", 2).await;
    let statement = |text: &str| {
        BatchStatementRequest::builder()
            .statement(text)
            .build()
            .unwrap()
    };

    let out = client
        .batch_execute_statement()
        .statements(statement("INSERT INTO \"batch\" VALUE {'p': 'b', 'c': 0}"))
        .statements(statement("INSERT INTO \"batch\" VALUE {'p': 'a', 'c': 0}"))
        .statements(statement(
            "UPDATE \"batch\" SET v = 7 WHERE p = 'a' AND c = 1",
        ))
        .statements(statement(
            "UPDATE \"batch\" SET v = 7 WHERE p = 'zz' AND c = 1",
        ))
        .statements(statement("DELETE FROM \"batch\" WHERE"))
        .send()
        .await
        .unwrap();
    let responses = out.responses.unwrap();
    let codes: Vec<Option<BatchStatementErrorCodeEnum>> = responses
        .iter()
        .map(|r| r.error.as_ref().and_then(|e| e.code.clone()))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(BatchStatementErrorCodeEnum::DuplicateItem),
            None,
            Some(BatchStatementErrorCodeEnum::ConditionalCheckFailed),
            Some(BatchStatementErrorCodeEnum::ValidationError),
        ]
    );
    assert_eq!(responses[0].table_name.as_deref(), Some("batch"));

    // A write batch whose first statement fails still reports write capacity.
    let failed_first = client
        .batch_execute_statement()
        .statements(statement("INSERT INTO \"batch\" VALUE {'p': 'a', 'c': 0}"))
        .statements(statement("INSERT INTO \"batch\" VALUE {'p': 'c', 'c': 0}"))
        .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let consumed = &failed_first.consumed_capacity()[0];
    assert_eq!(consumed.write_capacity_units, Some(1.0));
    assert_eq!(consumed.read_capacity_units, None);

    let out = client
        .batch_execute_statement()
        .statements(statement("SELECT * FROM \"batch\" WHERE p = 'a' AND c = 1"))
        .statements(
            BatchStatementRequest::builder()
                .statement("SELECT v FROM \"batch\" WHERE p = ? AND c = ?")
                .parameters(s("b"))
                .parameters(n("0"))
                .build()
                .unwrap(),
        )
        .statements(statement(
            "SELECT * FROM \"batch\" WHERE p = 'nobody' AND c = 1",
        ))
        .statements(statement("SELECT * FROM \"batch\" WHERE p = 'a'"))
        .send()
        .await
        .unwrap();
    let responses = out.responses.unwrap();
    assert_eq!(responses[0].item.as_ref().unwrap()["v"], n("7"));
    // The item exists and has no `v`: an empty projection.
    assert_eq!(responses[1].item, Some(Item::new()));
    assert_eq!(responses[2].item, None);
    assert_eq!(responses[2].error, None);
    assert_eq!(
        responses[3].error.as_ref().and_then(|e| e.code.clone()),
        Some(BatchStatementErrorCodeEnum::ValidationError)
    );

    assert_fails_with(
        client
            .batch_execute_statement()
            .statements(statement("SELECT * FROM \"batch\" WHERE p = 'a' AND c = 1"))
            .statements(statement("DELETE FROM \"batch\" WHERE p = 'a' AND c = 1"))
            .send()
            .await,
        "ValidationException",
    );
}

#[tokio::test]
async fn partiql_writes_appear_in_the_stream() {
    let node = TestNode::start().await;
    let client = node.client();
    let streams = node.streams_client();
    let arn = create_stream_table(&client, "streamed", StreamViewType::NewAndOldImages).await;
    run(
        &client,
        "INSERT INTO \"streamed\" VALUE {'p': 'k', 'v': 1}",
        vec![],
    )
    .await;
    run(
        &client,
        "UPDATE \"streamed\" SET v = 2 WHERE p = 'k'",
        vec![],
    )
    .await;
    run(&client, "DELETE FROM \"streamed\" WHERE p = 'k'", vec![]).await;
    let records = read_stream(&streams, &arn).await;
    let changes: Vec<(&str, Option<Item>, Option<Item>)> = records
        .iter()
        .map(|(_, r)| {
            let body = r.dynamodb.as_ref().unwrap();
            (
                event_name(r),
                body.old_image.as_ref().map(image),
                body.new_image.as_ref().map(image),
            )
        })
        .collect();
    let one = item(&[("p", s("k")), ("v", n("1"))]);
    let two = item(&[("p", s("k")), ("v", n("2"))]);
    assert_eq!(
        changes,
        vec![
            ("INSERT", None, Some(one.clone())),
            ("MODIFY", Some(one), Some(two.clone())),
            ("REMOVE", Some(two), None),
        ]
    );
}

#[tokio::test]
async fn an_index_read_for_attributes_the_index_does_not_project_is_refused() {
    // Source: nubo-db/dynamodb-conformance's partiqlIndexQualifier.test.ts, run against AWS.
    let node = TestNode::start().await;
    let client = node.client();
    create_partiql_table_projecting(&client, "narrow", ProjectionType::KeysOnly).await;
    let refusal = |statement: &'static str| {
        let client = client.clone();
        async move {
            let e = client
                .execute_statement()
                .statement(statement)
                .send()
                .await
                .unwrap_err();
            e.as_service_error()
                .and_then(|s| s.meta().message().map(str::to_string))
                .unwrap_or_default()
        }
    };
    assert_eq!(
        refusal("SELECT p FROM \"narrow\".\"by_g\" WHERE g = 'x' AND v = 1").await,
        "One or more parameter values were invalid: Secondary index by_g does not project one or more filter attributes: [v]"
    );
    assert_eq!(
        refusal("SELECT v FROM \"narrow\".\"by_g\" WHERE g = 'x'").await,
        "One or more parameter values were invalid: Global secondary index by_g does not project [v]"
    );
    let keys = run(
        &client,
        "SELECT p FROM \"narrow\".\"by_g\" WHERE g = 'x'",
        vec![],
    )
    .await;
    assert_eq!(keys.items.unwrap().len(), 0);
}
