//! Transactions through the AWS SDK: atomicity, cancellation reasons, idempotency, and
//! serializability under concurrent transfers.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Get, Put, ReturnValuesOnConditionCheckFailure, TransactGetItem,
    TransactWriteItem, Update,
};
use tidemark_tests::TestNode;

use crate::common::{create_table, error_code, n, s};

fn balance_update(account: &str, delta: i64) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name("bank")
                .key("p", s(account))
                .update_expression("SET balance = balance + :d")
                .condition_expression("balance >= :min")
                .expression_attribute_values(":d", n(&delta.to_string()))
                .expression_attribute_values(":min", n(&(-delta).max(0).to_string()))
                .build()
                .unwrap(),
        )
        .build()
}

/// Creates the `bank` table with account `a` holding 10, and returns a client.
async fn open_bank(node: &TestNode) -> aws_sdk_dynamodb::Client {
    let client = node.client();
    create_table(&client, "bank", false).await;
    client
        .put_item()
        .table_name("bank")
        .item("p", s("a"))
        .item("balance", n("10"))
        .send()
        .await
        .unwrap();
    client
}

#[tokio::test]
async fn cancelled_transactions_write_nothing_and_give_reasons_in_order() {
    let node = TestNode::start().await;
    let client = open_bank(&node).await;
    let base = node.node().store().durable_seq();

    let check_fails = TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name("bank")
                .key("p", s("a"))
                .condition_expression("balance > :big")
                .expression_attribute_values(":big", n("100"))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .unwrap(),
        )
        .build();
    let put_b = TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name("bank")
                .item("p", s("b"))
                .item("balance", n("5"))
                .build()
                .unwrap(),
        )
        .build();
    let err = client
        .transact_write_items()
        .transact_items(put_b.clone())
        .transact_items(check_fails)
        .send()
        .await
        .unwrap_err();
    match err.into_service_error() {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("")).collect();
            assert_eq!(codes, ["None", "ConditionalCheckFailed"]);
            assert_eq!(reasons[1].item().unwrap()["balance"], n("10"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        node.node().store().durable_seq(),
        base,
        "a cancelled transaction writes nothing"
    );
    let b = client
        .get_item()
        .table_name("bank")
        .key("p", s("b"))
        .send()
        .await
        .unwrap();
    assert!(b.item.is_none());

    // Two actions on one item are rejected.
    let twice = client
        .transact_write_items()
        .transact_items(balance_update("a", 1))
        .transact_items(balance_update("a", -1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&twice), "ValidationException");

    // A successful transaction writes one change record per changed item, none for checks.
    client
        .transact_write_items()
        .transact_items(put_b)
        .transact_items(balance_update("a", -3))
        .send()
        .await
        .unwrap();
    let records = node.node().store().read_changes(base.next(), 100).unwrap();
    assert_eq!(records.len(), 2);
    let get_a = || {
        TransactGetItem::builder()
            .get(
                Get::builder()
                    .table_name("bank")
                    .key("p", s("a"))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let got = client
        .transact_get_items()
        .transact_items(get_a())
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name("bank")
                        .key("p", s("zzz"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let responses = got.responses();
    assert_eq!(responses[0].item().unwrap()["balance"], n("7"));
    assert!(responses[1].item().is_none());

    // Two gets of one item are rejected, as two writes are.
    let twice = client
        .transact_get_items()
        .transact_items(get_a())
        .transact_items(get_a())
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&twice), "ValidationException");
    assert_eq!(
        twice.as_service_error().and_then(|e| e.meta().message()),
        Some("Transaction request cannot include multiple operations on one item")
    );
}

#[tokio::test]
async fn a_client_request_token_makes_a_transaction_idempotent() {
    let node = TestNode::start().await;
    let client = open_bank(&node).await;
    for _ in 0..2 {
        client
            .transact_write_items()
            .client_request_token("token-1")
            .transact_items(balance_update("a", 5))
            .send()
            .await
            .unwrap();
    }
    let a = client
        .get_item()
        .table_name("bank")
        .key("p", s("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        a.item.unwrap()["balance"],
        n("15"),
        "the retry wrote nothing"
    );
    let mismatch = client
        .transact_write_items()
        .client_request_token("token-1")
        .transact_items(balance_update("a", 6))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&mismatch),
        "IdempotentParameterMismatchException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_never_change_the_total() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "bank", false).await;
    const ACCOUNTS: usize = 6;
    for i in 0..ACCOUNTS {
        client
            .put_item()
            .table_name("bank")
            .item("p", s(&format!("acct{i}")))
            .item("balance", n("100"))
            .send()
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for worker in 0..16usize {
        let client = tidemark_tests::client_for(&node.endpoint());
        tasks.push(tokio::spawn(async move {
            for round in 0..25usize {
                let from = (worker + round) % ACCOUNTS;
                let to = (worker * 7 + round * 3 + 1) % ACCOUNTS;
                if from == to {
                    continue;
                }
                let amount = ((worker + round) % 40 + 1) as i64;
                let result = client
                    .transact_write_items()
                    .transact_items(balance_update(&format!("acct{from}"), -amount))
                    .transact_items(balance_update(&format!("acct{to}"), amount))
                    .send()
                    .await;
                // Insufficient funds cancel the transfer as a whole; anything else is a bug.
                if let Err(e) = result {
                    assert_eq!(error_code(&e), "TransactionCanceledException");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0i64;
    for i in 0..ACCOUNTS {
        let item = client
            .get_item()
            .table_name("bank")
            .key("p", s(&format!("acct{i}")))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let balance: i64 = item["balance"].as_n().unwrap().parse().unwrap();
        assert!(balance >= 0, "no account overdrawn");
        total += balance;
    }
    assert_eq!(total, 100 * ACCOUNTS as i64);
}
