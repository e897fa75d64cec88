//! Reading one page of a Query or Scan: DynamoDB's paging rules, shared by both.
//!
//! A page stops after `Limit` evaluated items or once 1 MB of items has been read (both
//! counted before the filter); `LastEvaluatedKey` then names the last item evaluated, and the
//! next page resumes strictly after it.
//!
//! A caller may run a read under a byte budget ([`Store::within_read_budget`]): a page that
//! reads past it stops at once and the whole operation's result is discarded, so the caller
//! can try a read where it is cheap (the HTTP server's async worker) and run it again where
//! it may take long (the blocking pool) only when it turns out big.

use std::cell::Cell;

use super::{IndexUnits, read_units};
use crate::expr::{Condition, Projection};
use crate::model::{Item, KeyShape, item_size};
use crate::storage::keys::scan_segment;
use crate::{Error, Result, Store};

/// Most item bytes one page reads.
const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// On this thread inside [`Store::within_read_budget`]: the budget, and whether a page went
/// past it.
#[derive(Debug, Clone, Copy)]
struct ReadBudget {
    bytes: usize,
    exceeded: bool,
}

thread_local! {
    static READ_BUDGET: Cell<Option<ReadBudget>> = const { Cell::new(None) };
}

/// Restores the thread's budget state when a budgeted scope ends, even by a panic.
struct BudgetScope {
    outer: Option<ReadBudget>,
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        READ_BUDGET.with(|budget| budget.set(self.outer));
    }
}

/// Fails the page once it has read more than the thread's budget, and marks the scope so.
fn charge_budget(bytes: usize) -> Result<()> {
    READ_BUDGET.with(|cell| match cell.get() {
        Some(budget) if bytes > budget.bytes => {
            cell.set(Some(ReadBudget {
                exceeded: true,
                ..budget
            }));
            Err(Error::Internal(
                "a budgeted read went past its budget (the result is discarded)".into(),
            ))
        }
        _ => Ok(()),
    })
}

impl Store {
    /// Runs `read` (an operation that only reads) with every page it reads limited to `bytes`
    /// of items: `None` when a page went past that, and whatever `read` returned is then void
    /// (it stopped early); run it again without a budget.
    pub fn within_read_budget<T>(&self, bytes: usize, read: impl FnOnce() -> T) -> Option<T> {
        let scope = BudgetScope {
            outer: READ_BUDGET.with(|budget| {
                budget.replace(Some(ReadBudget {
                    bytes,
                    exceeded: false,
                }))
            }),
        };
        let value = read();
        let exceeded = READ_BUDGET.with(|budget| budget.get().is_some_and(|b| b.exceeded));
        drop(scope);
        (!exceeded).then_some(value)
    }
}

/// What a Query or Scan returns per item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Select {
    /// Every attribute (the default without a projection).
    #[default]
    AllAttributes,
    /// The attributes an index projects.
    AllProjectedAttributes,
    /// The attributes named by the projection.
    SpecificAttributes,
    /// No items, only counts.
    Count,
}

impl Select {
    /// Parses DynamoDB's names (`ALL_ATTRIBUTES`, ..., `COUNT`).
    pub fn parse(text: &str) -> Option<Select> {
        Some(match text {
            "ALL_ATTRIBUTES" => Select::AllAttributes,
            "ALL_PROJECTED_ATTRIBUTES" => Select::AllProjectedAttributes,
            "SPECIFIC_ATTRIBUTES" => Select::SpecificAttributes,
            "COUNT" => Select::Count,
            _ => return None,
        })
    }
}

/// Options every Query and Scan page shares.
#[derive(Debug, Default)]
pub struct PageOptions {
    /// Filter applied after reading (does not change what counts towards Limit and 1 MB).
    pub filter: Option<Condition>,
    /// Attributes to return.
    pub projection: Option<Projection>,
    /// What to return per item.
    pub select: Select,
    /// Most items to evaluate.
    pub limit: Option<i64>,
    /// Key of the last item of the previous page.
    pub exclusive_start_key: Option<Item>,
    /// Strongly consistent read (every read here is; it only changes the capacity charged).
    pub consistent_read: bool,
}

/// One page of a Query or Scan.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageOutcome {
    /// Matching items, projected (empty for `Select=COUNT`).
    pub items: Vec<Item>,
    /// Items that passed the filter.
    pub count: usize,
    /// Items evaluated.
    pub scanned_count: usize,
    /// Where the next page starts, when this one stopped early.
    pub last_evaluated_key: Option<Item>,
    /// Read capacity units consumed.
    pub consumed_capacity_units: f64,
    /// When an index was read, the index and its units: the whole of
    /// `consumed_capacity_units`, since reading an index reads nothing of the table.
    pub index_units: Option<IndexUnits>,
}

impl PageOptions {
    /// Checks Select against the projection (and whether an index is read) and the limit.
    pub(crate) fn check(&self, index: bool) -> Result<()> {
        if let Some(limit) = self.limit
            && limit < 1
        {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        match (self.select, self.projection.is_some()) {
            (Select::SpecificAttributes, false) => Err(Error::validation(
                "1 validation error detected: Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            )),
            (Select::AllAttributes, true) => Err(Error::validation(
                "One or more parameter values were invalid: Cannot specify the AttributesToGet or ProjectionExpression when choosing to get ALL_ATTRIBUTES",
            )),
            (Select::Count, true) => Err(Error::validation(
                "One or more parameter values were invalid: Cannot specify the AttributesToGet or ProjectionExpression when choosing to get COUNT",
            )),
            (Select::AllProjectedAttributes, _) if !index => Err(Error::validation(
                "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is supported only for index queries",
            )),
            (Select::AllProjectedAttributes, true) => Err(Error::validation(
                "One or more parameter values were invalid: Cannot specify the AttributesToGet or ProjectionExpression when choosing to get ALL_PROJECTED_ATTRIBUTES",
            )),
            _ => Ok(()),
        }
    }
}

/// The key attributes of what a page reads (a table's, or an index's plus its table's).
#[derive(Debug)]
pub(crate) struct PageKeys<'a> {
    /// The partition key, which decides an item's parallel-scan segment.
    pub(crate) partition: &'a str,
    /// Every attribute `LastEvaluatedKey` names.
    pub(crate) attributes: Vec<&'a str>,
}

impl<'a> PageKeys<'a> {
    /// The keys of a table.
    pub(crate) fn of_table(shape: &'a KeyShape) -> Self {
        PageKeys {
            partition: &shape.hash.name,
            attributes: shape.attributes().map(|a| a.name.as_str()).collect(),
        }
    }
}

/// Reads one page from `items` (already positioned after the start key).
pub(crate) fn read_page(
    items: impl Iterator<Item = Result<Item>>,
    keys: &PageKeys<'_>,
    options: &PageOptions,
    segment: Option<(u32, u32)>,
) -> Result<PageOutcome> {
    let limit = options
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut page = PageOutcome::default();
    let mut bytes = 0usize;
    for item in items {
        let item = item?;
        if let Some((segment, total)) = segment {
            let in_segment = item
                .get(keys.partition)
                .is_some_and(|pk| scan_segment(pk, total) == segment);
            if !in_segment {
                continue;
            }
        }
        page.scanned_count += 1;
        bytes += item_size(&item);
        charge_budget(bytes)?;
        let matches = match &options.filter {
            Some(filter) => filter.evaluate(Some(&item))?,
            None => true,
        };
        // Like DynamoDB, a page that reached its limit names its last key without looking
        // ahead, so the next page may be empty.
        let full = page.scanned_count >= limit || bytes >= MAX_PAGE_BYTES;
        if full {
            page.last_evaluated_key = Some(
                keys.attributes
                    .iter()
                    .filter_map(|name| item.get(*name).map(|v| (name.to_string(), v.clone())))
                    .collect(),
            );
        }
        if matches {
            page.count += 1;
            if options.select != Select::Count {
                page.items.push(match &options.projection {
                    Some(projection) => projection.apply(&item),
                    None => item,
                });
            }
        }
        if full {
            break;
        }
    }
    page.consumed_capacity_units = read_units(bytes, options.consistent_read);
    Ok(page)
}
