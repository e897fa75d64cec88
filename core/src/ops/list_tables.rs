//! ListTables: table names in order, a page at a time.

use super::tables::coral;
use crate::{Result, Store};

/// The result of ListTables.
#[derive(Debug, Clone, PartialEq)]
pub struct ListTablesOutcome {
    /// Names, in order.
    pub table_names: Vec<String>,
    /// Where the next page starts, when there is one.
    pub last_evaluated_table_name: Option<String>,
}

impl Store {
    /// Lists table names in order, from just after `exclusive_start`, at most `limit`.
    ///
    /// # Errors
    /// Validation for a limit outside 1..=100.
    pub fn list_tables(
        &self,
        exclusive_start: Option<&str>,
        limit: Option<i64>,
    ) -> Result<ListTablesOutcome> {
        let limit = match limit {
            None => 100,
            Some(l) if (1..=100).contains(&l) => l as usize,
            Some(l) if l < 1 => {
                return Err(coral(
                    &l.to_string(),
                    "limit",
                    "Member must have value greater than or equal to 1",
                ));
            }
            Some(l) => {
                return Err(coral(
                    &l.to_string(),
                    "limit",
                    "Member must have value less than or equal to 100",
                ));
            }
        };
        let mut names: Vec<String> = self.storage.catalog.tables.read().keys().cloned().collect();
        names.sort();
        let start = match exclusive_start {
            Some(after) => names.partition_point(|n| n.as_str() <= after),
            None => 0,
        };
        let page: Vec<String> = names.iter().skip(start).take(limit).cloned().collect();
        let more = names.len() > start + page.len();
        let last_evaluated_table_name = if more { page.last().cloned() } else { None };
        Ok(ListTablesOutcome {
            table_names: page,
            last_evaluated_table_name,
        })
    }
}
