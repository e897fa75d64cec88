//! DynamoDB operations (`X-Amz-Target: DynamoDB_20120810.<Op>`), one file each; the table
//! that routes to them is `wire::OPERATIONS`.

pub(super) mod backups;
pub(super) mod batch_execute_statement;
pub(super) mod batch_get_item;
pub(super) mod batch_write_item;
pub(super) mod common;
pub(super) mod contributor_insights;
pub(super) mod create_table;
pub(super) mod delete_item;
pub(super) mod delete_table;
pub(super) mod describe_endpoints;
pub(super) mod describe_limits;
pub(super) mod describe_table;
pub(super) mod describe_time_to_live;
mod echo;
pub(super) mod execute_statement;
pub(super) mod execute_transaction;
pub(super) mod get_item;
pub(super) mod global_tables;
pub(super) mod kinesis_destinations;
pub(super) mod list_tables;
pub(super) mod put_item;
pub(super) mod query;
pub(super) mod scan;
mod table_description;
pub(super) mod tags;
pub(super) mod transact_get_items;
pub(super) mod transact_write_items;
pub(super) mod transfers;
pub(super) mod update_item;
pub(super) mod update_table;
pub(super) mod update_time_to_live;
