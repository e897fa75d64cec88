//! Retention holds as stored: `hold/<name>` in the catalog → first needed sequence · table
//! id (0 for none); and the node's holds in memory. The API is `crate::retention`.

use std::collections::BTreeMap;

use super::seq_of;
use crate::changes::ChangeSeq;
use crate::retention::HoldName;
use crate::{Error, Result};

/// Catalog key prefix of holds.
const HOLD_PREFIX: &str = "hold/";

/// One retention hold (re-exported as `crate::retention::Hold`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Who holds.
    pub name: HoldName,
    /// The first sequence the holder still needs.
    pub from: ChangeSeq,
    /// The table the hold belongs to, if any: deleting the table releases it.
    pub table_id: Option<u64>,
}

pub(crate) fn hold_key(name: &HoldName) -> Vec<u8> {
    format!("{HOLD_PREFIX}{name}").into_bytes()
}

pub(crate) fn encode_hold(hold: &Hold) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&hold.from.to_be_bytes());
    out.extend_from_slice(&hold.table_id.unwrap_or(0).to_be_bytes());
    out
}

/// Decodes a stored hold (`from · table id`, 0 for none).
pub(crate) fn decode_hold(key: &[u8], value: &[u8]) -> Result<Hold> {
    let name: HoldName = key
        .strip_prefix(HOLD_PREFIX.as_bytes())
        .and_then(|n| std::str::from_utf8(n).ok())
        .ok_or_else(|| Error::Corrupt("a retention hold without a name".into()))?
        .parse()?;
    let (from, table) = value
        .split_at_checked(8)
        .ok_or_else(|| Error::Corrupt(format!("retention hold {name} of {} bytes", value.len())))?;
    let table_id = seq_of(table)?;
    Ok(Hold {
        name,
        from: seq_of(from)?,
        table_id: (table_id != 0).then_some(table_id),
    })
}

/// The holds of a node, in memory and in the catalog.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    pub(crate) by_name: parking_lot::Mutex<BTreeMap<HoldName, Hold>>,
}

impl Holds {
    /// The lowest position any hold needs (`ChangeSeq::MAX` with no holds).
    pub(crate) fn lowest(&self) -> ChangeSeq {
        self.by_name
            .lock()
            .values()
            .map(|h| h.from)
            .min()
            .unwrap_or(ChangeSeq::MAX)
    }
}
