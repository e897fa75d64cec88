//! Operations on the store itself: one file per item read or write (GetItem, PutItem,
//! UpdateItem, DeleteItem, BatchGetItem, BatchWriteItem, Query, Scan, TransactGetItems), the
//! table definitions (`tables`: lookup, save, drop, streams; DescribeTable, ListTables,
//! extensions), the stream lanes, and the records the transfer jobs keep (`documents`). Each takes a typed request (already parsed: expressions
//! are ASTs) and returns a typed outcome; none knows the wire format. The services over the
//! store ([`crate::tables`], [`crate::transactions`], [`crate::ttl`], [`crate::restore`],
//! [`crate::replication`]) hold their own operations; their request types are re-exported
//! here.

mod batch_get;
mod batch_write;
mod delete_item;
pub(crate) mod describe_table;
mod documents;
mod extensions;
mod get_item;
mod item_collections;
mod list_tables;
mod page;
mod put_item;
mod query;
mod scan;
mod streams;
pub(crate) mod tables;
mod transact_get;
pub(crate) mod update_item;

pub use crate::tables::CreateTableRequest;
pub use crate::tables::{GsiUpdate, UpdateTableRequest};
pub use crate::transactions::{
    TransactAction, TransactWriteItem, TransactWriteOutcome, TransactWriteRequest,
};
pub use crate::ttl::{ExpiryReport, UpdateTimeToLiveRequest};
pub use batch_get::{BatchGetOutcome, BatchGetRequest, KeysAndAttributes};
pub use batch_write::{BatchWriteOutcome, BatchWriteRequest, WriteRequest};
pub use delete_item::DeleteItemRequest;
pub use describe_table::{
    BillingModeSummary, IndexDescription, ProvisionedThroughputDescription, TableDescription,
    TableStatus, WarmThroughput,
};
pub use extensions::TableExtension;
pub use get_item::{GetItemOutcome, GetItemRequest};
pub use item_collections::{ITEM_COLLECTION_LIMIT_BYTES, ItemCollectionMetrics};
pub use list_tables::ListTablesOutcome;
pub use page::{PageOptions, PageOutcome, Select};
pub use put_item::PutItemRequest;
pub use query::QueryRequest;
pub(crate) use query::{GSI_CONSISTENT_READ, Source};
pub use scan::ScanRequest;
pub use transact_get::{TransactGetItem, TransactGetOutcome};
pub use update_item::UpdateItemRequest;

use crate::changes::ChangeSeq;
use crate::expr::Condition;
use crate::model::{Item, item_size};
use crate::storage::catalog::TableEntry;
use crate::write::{Decision, Target};
use crate::{Error, Result, Store};

/// Largest item, in bytes as DynamoDB counts them.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// What a write returns in `Attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnValues {
    /// Nothing.
    #[default]
    None,
    /// The whole item as it was.
    AllOld,
    /// The updated attributes as they were.
    UpdatedOld,
    /// The whole item as it is now.
    AllNew,
    /// The updated attributes as they are now.
    UpdatedNew,
}

impl ReturnValues {
    /// Parses DynamoDB's names (`NONE`, `ALL_OLD`, ...).
    pub fn parse(text: &str) -> Option<ReturnValues> {
        Some(match text {
            "NONE" => ReturnValues::None,
            "ALL_OLD" => ReturnValues::AllOld,
            "UPDATED_OLD" => ReturnValues::UpdatedOld,
            "ALL_NEW" => ReturnValues::AllNew,
            "UPDATED_NEW" => ReturnValues::UpdatedNew,
            _ => return None,
        })
    }
}

/// The result of a single-item write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOutcome {
    /// `Attributes` per `ReturnValues`.
    pub attributes: Option<Item>,
    /// Write capacity units consumed, the table's and its indexes' together.
    pub consumed_capacity_units: f64,
    /// The part of `consumed_capacity_units` each secondary index took.
    pub index_units: Vec<IndexUnits>,
    /// Sequence of the change record written, or `None` when the write changed nothing.
    pub change_seq: Option<ChangeSeq>,
}

/// Capacity units an operation consumed on one secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexUnits {
    /// The index's name.
    pub index_name: String,
    /// A global index (else local).
    pub global: bool,
    /// Units consumed.
    pub units: f64,
}

/// Adds `more` to `into`, index by index.
pub(crate) fn add_index_units(into: &mut Vec<IndexUnits>, more: Vec<IndexUnits>) {
    for m in more {
        match into.iter_mut().find(|u| u.index_name == m.index_name) {
            Some(u) => u.units += m.units,
            None => into.push(m),
        }
    }
}

/// Write units each index of `table` takes when `old` becomes `new`: as DynamoDB counts them,
/// an index whose entry does not change costs nothing (an item without the index key has no
/// entry), an entry written or removed costs 1 unit per KB of its projection, and an entry
/// that moves to another index key costs both the removal and the write.
pub(crate) fn index_write_units(
    table: &TableEntry,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Vec<IndexUnits> {
    let mut out = Vec::new();
    for index in table.indexes().iter() {
        // Keys and projections are compared and sized in place: this runs on every write of
        // an indexed table, and copying two projections per index would cost more than the
        // write's own encoding.
        let size = |item: &Item| index.projected_size(&table.shape, item);
        let units_of = |bytes: usize| bytes.div_ceil(1024).max(1) as f64;
        let before = old.and_then(|item| Some((index.entry_key(&table.shape, item)?, item)));
        let after = new.and_then(|item| Some((index.entry_key(&table.shape, item)?, item)));
        let units = match (before, after) {
            (None, None) => continue,
            (Some((before_key, before)), Some((after_key, after))) if before_key == after_key => {
                if index
                    .projected(&table.shape, before)
                    .eq(index.projected(&table.shape, after))
                {
                    continue;
                }
                units_of(size(before).max(size(after)))
            }
            (before, after) => {
                before.map_or(0.0, |(_, item)| units_of(size(item)))
                    + after.map_or(0.0, |(_, item)| units_of(size(item)))
            }
        };
        out.push(IndexUnits {
            index_name: index.name.clone(),
            global: index.global,
            units,
        });
    }
    out
}

/// Checks the 400 KB item limit.
pub(crate) fn check_item_size(item: &Item) -> Result<()> {
    if item_size(item) > MAX_ITEM_BYTES {
        return Err(Error::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(())
}

/// Write capacity units for a write that replaced `old` with `new`: 1 per KB of the larger.
pub(crate) fn write_units(old: Option<&Item>, new: Option<&Item>) -> f64 {
    let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
    size.div_ceil(1024).max(1) as f64
}

/// Read capacity units for reading `size` bytes: 1 per 4 KB, half for eventually consistent.
pub(crate) fn read_units(size: usize, consistent: bool) -> f64 {
    let units = size.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Evaluates a write's condition against the old item; a false condition fails the write,
/// with the old item attached when `return_old` (ReturnValuesOnConditionCheckFailure=ALL_OLD).
pub(crate) fn check_condition(
    condition: Option<&Condition>,
    old: Option<&Item>,
    return_old: bool,
) -> Result<()> {
    match condition {
        Some(condition) if !condition.evaluate(old)? => Err(Error::ConditionalCheckFailed {
            item: if return_old {
                old.cloned().map(Box::new)
            } else {
                None
            },
        }),
        _ => Ok(()),
    }
}

/// Longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65535;

/// Rejects empty and over-long top-level attribute names.
pub(crate) fn check_attribute_names(item: &Item) -> Result<()> {
    for name in item.keys() {
        if name.is_empty() {
            return Err(Error::validation(
                "One or more parameter values were invalid: Empty attribute name",
            ));
        }
        if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Attribute name is too large, must be less than {} bytes",
                MAX_ATTRIBUTE_NAME_BYTES + 1
            )));
        }
    }
    Ok(())
}

impl Store {
    /// PutItem's and DeleteItem's write: replaces the whole item with `new` (`None` deletes
    /// it) if `condition` holds on the item as it is, returning the old item per
    /// `return_values`.
    fn replace_item(
        &self,
        target: Target,
        new: Option<Item>,
        condition: Option<&Condition>,
        return_old_on_condition_failure: bool,
        return_values: ReturnValues,
    ) -> Result<WriteOutcome> {
        let table = target.table.clone();
        let written = self.write_one(target, |cell| {
            let old = cell.item.as_ref();
            check_condition(condition, old, return_old_on_condition_failure)?;
            let index_units = index_write_units(&table, old, new.as_ref());
            let units = write_units(old, new.as_ref());
            let attributes = match return_values {
                ReturnValues::AllOld => old.cloned(),
                _ => None,
            };
            Ok((Decision::Write(new), (attributes, units, index_units)))
        })?;
        let (attributes, units, index_units) = written.value;
        Ok(WriteOutcome {
            attributes,
            consumed_capacity_units: units + index_units.iter().map(|u| u.units).sum::<f64>(),
            index_units,
            change_seq: written.last_seq,
        })
    }
}
