//! Query: the items of one partition of a table or index, in sort-key order (or reverse),
//! one page at a time.

use std::sync::Arc;

use super::IndexUnits;
use super::page::{PageKeys, PageOptions, PageOutcome, Select, read_page};
use crate::expr::describe;
use crate::expr::{KeyCondition, SortKeyCondition};
use crate::model::{Item, KeyShape};
use crate::storage::catalog::TableEntry;
use crate::storage::index::{IndexInfo, IndexProjection};
use crate::storage::keys::{KeyRange, item_key, query_range};
use crate::{Error, Result, Store, TableId};

/// A Query request (expressions already parsed against the key schema queried).
#[derive(Debug, Default)]
pub struct QueryRequest {
    /// Table name.
    pub table_name: String,
    /// Secondary index to query instead of the table.
    pub index_name: Option<String>,
    /// The partition and sort-key condition.
    pub key_condition: Option<KeyCondition>,
    /// Sort-key order (`ScanIndexForward`, default true).
    pub scan_forward: bool,
    /// Filter, projection, Select, Limit, paging, consistency.
    pub options: PageOptions,
}

/// What a Query or Scan reads: a table, or one of its indexes.
pub(crate) struct Source {
    pub(crate) table: Arc<TableEntry>,
    pub(crate) index: Option<IndexInfo>,
}

/// The refusal of a strongly consistent read of a global index (PartiQL words it its own way).
pub(crate) const GSI_CONSISTENT_READ: &str =
    "Consistent reads are not supported on global secondary indexes";

/// The key error of an item or start key that does not fit the key schema.
const KEY_MISMATCH: &str = "The provided key element does not match the schema";

impl Source {
    /// The key schema the reader's key condition and filter are checked against.
    pub(crate) fn shape(&self) -> &KeyShape {
        self.index.as_ref().map_or(&self.table.shape, |i| &i.shape)
    }

    /// The key attributes pages report and resume from.
    pub(crate) fn page_keys(&self) -> PageKeys<'_> {
        match &self.index {
            None => PageKeys::of_table(&self.table.shape),
            Some(index) => PageKeys {
                partition: &index.shape.hash.name,
                attributes: index.key_attributes(&self.table.shape),
            },
        }
    }

    /// Puts a page's units on the index it read, when it read one.
    pub(crate) fn charge_index(&self, mut page: PageOutcome) -> PageOutcome {
        page.index_units = self.index.as_ref().map(|index| IndexUnits {
            index_name: index.name.clone(),
            global: index.global,
            units: page.consumed_capacity_units,
        });
        page
    }

    /// The storage id whose keys hold what is read (table id or index id).
    pub(crate) fn id(&self) -> TableId {
        self.index.as_ref().map_or(self.table.id, |i| i.id)
    }

    /// Checks an `ExclusiveStartKey` and returns the storage key to resume after.
    pub(crate) fn start_key(&self, start: &Item) -> Result<Vec<u8>> {
        // A key naming other attributes is the bare sentence (conformance query.test.ts);
        // one of the wrong types says why (the Alternator suite's test_query.py).
        let invalid = |detail: &str| {
            Error::validation(format!("The provided starting key is invalid: {detail}"))
        };
        let shape = &self.table.shape;
        let names: Vec<&str> = match &self.index {
            None => shape.attributes().map(|a| a.name.as_str()).collect(),
            Some(index) => index.key_attributes(shape),
        };
        if start.len() != names.len() || names.iter().any(|n| !start.contains_key(*n)) {
            return Err(Error::validation("The provided starting key is invalid"));
        }
        match &self.index {
            None => {
                shape
                    .check_key(start)
                    .map_err(|e| invalid(&e.to_string()))?;
                Ok(item_key(self.table.id, shape, start))
            }
            Some(index) => index
                .entry_key(shape, start)
                .ok_or_else(|| invalid(KEY_MISMATCH)),
        }
    }

    /// Items (or index entries) in `range`. A local index that does not project every
    /// attribute answers ALL_ATTRIBUTES and SPECIFIC_ATTRIBUTES reads with the table's items,
    /// as DynamoDB does (it fetches them from the table).
    pub(crate) fn read<'a>(
        &self,
        store: &'a Store,
        range: KeyRange,
        reverse: bool,
        select: Select,
    ) -> Box<dyn Iterator<Item = Result<Item>> + 'a> {
        match &self.index {
            None => store.storage.items_in(range, reverse),
            Some(index)
                if !index.global
                    && index.projection != IndexProjection::All
                    && matches!(select, Select::AllAttributes | Select::SpecificAttributes) =>
            {
                let table = self.table.clone();
                Box::new(
                    store
                        .storage
                        .index_items_in(range, reverse)
                        .filter_map(move |entry| {
                            let fetched = entry.and_then(|entry| {
                                let key = item_key(
                                    table.id,
                                    &table.shape,
                                    &table.shape.project_key(&entry),
                                );
                                store.storage.read_item(&key)
                            });
                            fetched.transpose()
                        }),
                )
            }
            Some(_) => store.storage.index_items_in(range, reverse),
        }
    }
}

impl Store {
    /// What a Query or Scan of `table_name` (or its index) reads.
    pub(crate) fn source(&self, table_name: &str, index_name: Option<&str>) -> Result<Source> {
        let table = self.item_table(table_name)?;
        if let Some(name) = index_name
            && table.definition.read().backfilling.contains(name)
        {
            return Err(Error::validation(format!(
                "Cannot read from backfilling global secondary index: {name}"
            )));
        }
        let index = match index_name {
            None => None,
            Some(name) => Some(
                table
                    .indexes()
                    .iter()
                    .find(|i| i.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        Error::validation(format!(
                            "The table does not have the specified index: {name}"
                        ))
                    })?,
            ),
        };
        Ok(Source { table, index })
    }

    /// The key schema a Query of `table_name` (or its index) works with, for parsing key
    /// conditions.
    ///
    /// # Errors
    /// ResourceNotFound; Validation for an unknown index.
    pub fn key_shape(&self, table_name: &str, index_name: Option<&str>) -> Result<KeyShape> {
        Ok(self.source(table_name, index_name)?.shape().clone())
    }

    /// One page of a Query.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (key condition, start key, Select, Limit), storage failures.
    pub fn query(&self, request: QueryRequest) -> Result<PageOutcome> {
        self.query_page(request, true)
    }

    /// One page of a Query whose filter may also test key attributes: a PartiQL WHERE
    /// states key conditions Query cannot use as such (`sk > 1 AND sk < 5`) as filters.
    pub(crate) fn query_allowing_key_filters(&self, request: QueryRequest) -> Result<PageOutcome> {
        self.query_page(request, false)
    }

    fn query_page(&self, request: QueryRequest, refuse_key_filters: bool) -> Result<PageOutcome> {
        let source = self.source(&request.table_name, request.index_name.as_deref())?;
        let key_condition = request.key_condition.ok_or_else(|| {
            Error::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            )
        })?;
        let options = request.options;
        check_source_options(&source, &options)?;
        if refuse_key_filters
            && let Some(filter) = &options.filter
            && let Some(key) = filter
                .referenced_attributes()
                .into_iter()
                .find(|a| source.shape().is_key_attribute(a))
        {
            return Err(Error::validation(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {key}"
            )));
        }
        let mut range = query_range(source.id(), &key_condition);
        if let Some(start) = &options.exclusive_start_key {
            if source.index.is_none() && source.table.shape.range.is_none() {
                // A partition of a table without a sort key holds one item: there is nothing
                // after it to resume at, and DynamoDB refuses the key.
                return Err(Error::validation(format!(
                    "The provided exclusive start key is invalid: ExclusiveStartKey: {}",
                    describe_key(start)
                )));
            }
            let resume = source.start_key(start)?;
            let partition_values = std::iter::once(&key_condition.partition_value)
                .chain(&key_condition.partition_rest);
            if source
                .shape()
                .partition_attributes()
                .zip(partition_values)
                .any(|(key, value)| start.get(&key.name) != Some(value))
            {
                return Err(Error::validation(
                    "The provided starting key is invalid: The provided starting key does not match the query's partition key",
                ));
            }
            // The sort attributes the condition pins to one value must be the start's too.
            let pinned = key_condition
                .sort_prefix
                .iter()
                .chain(match &key_condition.sort {
                    Some(SortKeyCondition::Eq(value)) => Some(value),
                    _ => None,
                });
            if source
                .shape()
                .sort_attributes()
                .zip(pinned)
                .any(|(key, value)| start.get(&key.name) != Some(value))
            {
                return Err(Error::validation(
                    "The provided starting key is outside query boundaries based on provided conditions",
                ));
            }
            range.resume_after(resume, request.scan_forward);
        }
        let items = source.read(self, range, !request.scan_forward, options.select);
        let page = read_page(items, &source.page_keys(), &options, None)?;
        Ok(source.charge_index(page))
    }
}

/// Checks the options that depend on what is read: Select, and consistency on a GSI.
pub(crate) fn check_source_options(source: &Source, options: &PageOptions) -> Result<()> {
    options.check(source.index.is_some())?;
    if let Some(index) = &source.index
        && index.global
        && index.projection != IndexProjection::All
        && options.select == Select::AllAttributes
    {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
            index.name
        )));
    }
    // A global index holds only what it projects: asking it for more is refused rather than
    // answered without it (a local index fetches the rest from the table).
    if let (Some(index), Some(projection)) = (&source.index, &options.projection)
        && index.global
        && let Some(missing) = projection
            .paths()
            .iter()
            .map(|p| p.attribute())
            .find(|a| !index.projects(&source.table.shape, a))
    {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Global secondary index {} does not project the requested attribute {missing}",
            index.name
        )));
    }
    if options.consistent_read && source.index.as_ref().is_some_and(|i| i.global) {
        return Err(Error::validation(GSI_CONSISTENT_READ));
    }
    Ok(())
}

/// A key as DynamoDB's messages show one: `{p=AttributeValue: {S:abc}, c=AttributeValue: {N:1}}`.
fn describe_key(key: &Item) -> String {
    let attributes: Vec<String> = key
        .iter()
        .map(|(name, value)| format!("{name}={}", describe(value)))
        .collect();
    format!("{{{}}}", attributes.join(", "))
}
