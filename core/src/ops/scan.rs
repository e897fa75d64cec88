//! Scan: every item of a table in storage-key order, one page at a time, optionally one
//! segment of a parallel scan.

use super::page::{PageOptions, PageOutcome, read_page};
use super::query::check_source_options;
use super::read_units;
use crate::storage::keys::{KeyRange, scan_segment};
use crate::{Error, Result, Store};

/// What a Scan page is charged at least, as bytes read: DynamoDB charges a Scan of one tiny
/// item 4 units (2 eventually consistent), as four 4 KB blocks (observed against AWS by the
/// Alternator test `test_scan_consumed_capacity`; AWS documents no reason).
const SCAN_MIN_BYTES: usize = 4 * 4096;

/// Most segments of a parallel scan.
const MAX_TOTAL_SEGMENTS: i64 = 1_000_000;

/// A Scan request.
#[derive(Debug, Default)]
pub struct ScanRequest {
    /// Table name.
    pub table_name: String,
    /// Index to scan (secondary indexes are not scannable yet).
    pub index_name: Option<String>,
    /// This request's segment and the number of segments, for a parallel scan.
    pub segment: Option<i64>,
    /// Number of segments of a parallel scan.
    pub total_segments: Option<i64>,
    /// Filter, projection, Select, Limit, paging, consistency.
    pub options: PageOptions,
}

impl Store {
    /// One page of a Scan. Segments split the table by a hash of the partition key, so the
    /// segments of one scan are disjoint and together return every item once.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (segments, start key, Select, Limit), storage failures.
    pub fn scan(&self, request: ScanRequest) -> Result<PageOutcome> {
        // The segments are checked before the table is looked up (dynalite's test/scan.js).
        let segment = match (request.segment, request.total_segments) {
            (None, None) => None,
            (Some(segment), Some(total)) => {
                if !(1..=MAX_TOTAL_SEGMENTS).contains(&total) {
                    return Err(Error::validation(format!(
                        "1 validation error detected: Value '{total}' at 'totalSegments' failed to satisfy constraint: Member must have value between 1 and {MAX_TOTAL_SEGMENTS}"
                    )));
                }
                if segment < 0 {
                    return Err(Error::validation(
                        "1 validation error detected: Value at 'Segment' failed to satisfy constraint: Member must have value greater than or equal to 0",
                    ));
                }
                if segment >= total {
                    return Err(Error::validation(
                        "The Segment parameter is zero-based and must be less than parameter TotalSegments",
                    ));
                }
                Some((segment as u32, total as u32))
            }
            (Some(_), None) => {
                return Err(Error::validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ));
            }
        };
        let source = self.source(&request.table_name, request.index_name.as_deref())?;
        let options = request.options;
        check_source_options(&source, &options)?;
        let mut range = KeyRange::prefix(&source.id().to_be_bytes());
        if let Some(start) = &options.exclusive_start_key {
            let resume = source.start_key(start)?;
            if let (Some((segment, total)), Some(pk)) =
                (segment, start.get(&source.shape().hash.name))
                && scan_segment(pk, total) != segment
            {
                return Err(Error::validation(
                    "The provided Exclusive start key does not map to the provided Segment and TotalSegments values.",
                ));
            }
            range.resume_after(resume, true);
        }
        let items = source.read(self, range, false, options.select);
        let mut page = read_page(items, &source.page_keys(), &options, segment)?;
        page.consumed_capacity_units = page
            .consumed_capacity_units
            .max(read_units(SCAN_MIN_BYTES, options.consistent_read));
        Ok(source.charge_index(page))
    }
}
