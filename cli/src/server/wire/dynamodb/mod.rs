//! DynamoDB operations (`X-Amz-Target: DynamoDB_20120810.<Op>`).

mod backups;
mod batch_execute_statement;
mod batch_get_item;
mod batch_write_item;
pub(crate) mod common;
pub(crate) mod create_table;
mod delete_item;
mod delete_table;
mod describe_endpoints;
mod describe_limits;
mod describe_table;
mod describe_time_to_live;
mod execute_statement;
mod execute_transaction;
mod get_item;
pub(crate) mod global_tables;
pub(crate) mod kinesis_destinations;
mod list_tables;
mod put_item;
mod query;
mod scan;
mod table_description;
mod tags;
mod transact_get_items;
mod transact_write_items;
pub(crate) mod transfers;
mod update_item;
mod update_table;
mod update_time_to_live;

pub(crate) use describe_endpoints::describe_endpoints;

use super::{Execution, Operation, run, run_empty};

/// The operation named `name`, as a function from request body to response body, and where
/// it runs.
pub(crate) fn operation(name: &str) -> Option<(Operation, Execution)> {
    use Execution::{Admin, Budgeted, Read, Statement, Walk, Write};
    Some(match name {
        "PutItem" => (|s, b| run(s, b, put_item::put_item), Write),
        "GetItem" => (|s, b| run(s, b, get_item::get_item), Read),
        "UpdateItem" => (|s, b| run(s, b, update_item::update_item), Write),
        "DeleteItem" => (|s, b| run(s, b, delete_item::delete_item), Write),
        "BatchWriteItem" => (|s, b| run(s, b, batch_write_item::batch_write_item), Write),
        "BatchGetItem" => (|s, b| run(s, b, batch_get_item::batch_get_item), Walk),
        "CreateTable" => (|s, b| run(s, b, create_table::create_table), Admin),
        "DescribeTable" => (|s, b| run(s, b, describe_table::describe_table), Read),
        "ListTables" => (|s, b| run(s, b, list_tables::list_tables), Read),
        "TagResource" => (|s, b| run_empty(s, b, tags::tag_resource), Admin),
        "UntagResource" => (|s, b| run_empty(s, b, tags::untag_resource), Admin),
        "ListTagsOfResource" => (|s, b| run(s, b, tags::list_tags_of_resource), Read),
        "TransactWriteItems" => (
            |s, b| run(s, b, transact_write_items::transact_write_items),
            Write,
        ),
        "TransactGetItems" => (
            |s, b| run(s, b, transact_get_items::transact_get_items),
            Read,
        ),
        "Query" => (|s, b| run(s, b, query::query), Budgeted),
        "ExecuteStatement" => (
            |s, b| run(s, b, execute_statement::execute_statement),
            Statement,
        ),
        "ExecuteTransaction" => (
            |s, b| run(s, b, execute_transaction::execute_transaction),
            Statement,
        ),
        "BatchExecuteStatement" => (
            |s, b| run(s, b, batch_execute_statement::batch_execute_statement),
            Statement,
        ),
        "Scan" => (|s, b| run(s, b, scan::scan), Walk),
        "DescribeLimits" => (|s, b| run(s, b, describe_limits::describe_limits), Read),
        "DescribeTimeToLive" => (
            |s, b| run(s, b, describe_time_to_live::describe_time_to_live),
            Read,
        ),
        "DescribeContinuousBackups" => {
            (|s, b| run(s, b, backups::describe_continuous_backups), Read)
        }
        "UpdateContinuousBackups" => (|s, b| run(s, b, backups::update_continuous_backups), Admin),
        "RestoreTableToPointInTime" => (
            |s, b| run(s, b, backups::restore_table_to_point_in_time),
            Admin,
        ),
        "RestoreTableFromBackup" => (|s, b| run(s, b, backups::restore_table_from_backup), Admin),
        "CreateBackup" => (|s, b| run(s, b, backups::create_backup), Admin),
        "DescribeBackup" => (|s, b| run(s, b, backups::describe_backup), Read),
        "DeleteBackup" => (|s, b| run(s, b, backups::delete_backup), Admin),
        "ListBackups" => (|s, b| run(s, b, backups::list_backups), Read),
        _ => return None,
    })
}
