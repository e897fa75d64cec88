//! Retention holds as stored: `hold/<name>` in the catalog → first needed sequence · table
//! id (0 for none); and the node's holds in memory. The API is tidemark-core's `retention`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{seq_of, u64_of};
use tidemark_model::changes::ChangeSeq;
use tidemark_model::model::TableId;
use tidemark_model::{Error, Result};

/// Catalog key prefix of holds.
const HOLD_PREFIX: &str = "hold/";

/// Who holds the log: one variant per kind of holder, with its one stored encoding.
///
/// IMPORTANT: the encoding (`Display`) is the hold's catalog key, so it must stay byte for
/// byte what existing data folders hold; [`FromStr`] accepts exactly what `Display` writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HoldName {
    /// `publish/<table id>`: a table's Kafka publisher, at the first change not confirmed in
    /// its topic.
    Publish {
        /// The published table.
        table_id: TableId,
    },
    /// `peer/<region>/<table id>`: a replica region, at the first own-origin change of the
    /// table it has not acknowledged (direct replication transport).
    Peer {
        /// The receiving region.
        region: String,
        /// The replicated table.
        table_id: TableId,
    },
    /// `inbound/<table id>`: the records (and so tombstones) of a global table that another
    /// region may still send an older write against.
    Inbound {
        /// The replicated table.
        table_id: TableId,
    },
    /// `replication-topic/<table id>`: a global table's own-origin changes not yet in its
    /// replication topic (Kafka replication transport).
    ReplicationTopic {
        /// The replicated table.
        table_id: TableId,
    },
    /// `pitr/<table id>`: a table's point-in-time recovery window.
    Pitr {
        /// The recoverable table.
        table_id: TableId,
    },
    /// `backup/<backup id, 16 hex digits>`: a backup being copied.
    Backup {
        /// The backup.
        backup_id: u64,
    },
    /// `restore/<target table>`: a restore from the log being built.
    Restore {
        /// The table being built.
        target: String,
    },
}

impl fmt::Display for HoldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldName::Publish { table_id } => write!(f, "publish/{table_id}"),
            HoldName::Peer { region, table_id } => write!(f, "peer/{region}/{table_id}"),
            HoldName::Inbound { table_id } => write!(f, "inbound/{table_id}"),
            HoldName::ReplicationTopic { table_id } => write!(f, "replication-topic/{table_id}"),
            HoldName::Pitr { table_id } => write!(f, "pitr/{table_id}"),
            HoldName::Backup { backup_id } => write!(f, "backup/{backup_id:016x}"),
            HoldName::Restore { target } => write!(f, "restore/{target}"),
        }
    }
}

impl FromStr for HoldName {
    type Err = Error;

    /// Reads a name as `Display` writes it.
    ///
    /// # Errors
    /// Corrupt for any other text (every stored name was written by `Display`).
    fn from_str(text: &str) -> Result<HoldName> {
        let corrupt =
            || Error::Corrupt(format!("retention hold name {text:?} is of no known kind"));
        let (kind, rest) = text.split_once('/').ok_or_else(corrupt)?;
        let number = |digits: &str| digits.parse::<TableId>().map_err(|_| corrupt());
        let name = match kind {
            "publish" => HoldName::Publish {
                table_id: number(rest)?,
            },
            "peer" => {
                // A region is the operator's word and may hold a slash; a table id does not.
                let (region, table_id) = rest.rsplit_once('/').ok_or_else(corrupt)?;
                HoldName::Peer {
                    region: region.to_string(),
                    table_id: number(table_id)?,
                }
            }
            "inbound" => HoldName::Inbound {
                table_id: number(rest)?,
            },
            "replication-topic" => HoldName::ReplicationTopic {
                table_id: number(rest)?,
            },
            "pitr" => HoldName::Pitr {
                table_id: number(rest)?,
            },
            "backup" => HoldName::Backup {
                backup_id: u64::from_str_radix(rest, 16).map_err(|_| corrupt())?,
            },
            "restore" => HoldName::Restore {
                target: rest.to_string(),
            },
            _ => return Err(corrupt()),
        };
        // The catalog key is the encoding, so only what `Display` writes is a name (not
        // `publish/07`, `backup/ff`): one hold can never be stored under two keys.
        match name.to_string() == text {
            true => Ok(name),
            false => Err(corrupt()),
        }
    }
}

/// One retention hold (re-exported as `tidemark_core::retention::Hold`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Who holds.
    pub name: HoldName,
    /// The first sequence the holder still needs.
    pub from: ChangeSeq,
    /// The table the hold belongs to, if any: deleting the table releases it.
    pub table_id: Option<TableId>,
}

/// The catalog key of the hold `name`.
pub fn hold_key(name: &HoldName) -> Vec<u8> {
    format!("{HOLD_PREFIX}{name}").into_bytes()
}

/// A hold as stored: first needed sequence · table id (0 for none), big-endian.
pub fn encode_hold(hold: &Hold) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&hold.from.to_be_bytes());
    out.extend_from_slice(&hold.table_id.map_or([0; 8], TableId::to_be_bytes));
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
    let table_id = u64_of(table)?;
    Ok(Hold {
        name,
        from: seq_of(from)?,
        table_id: (table_id != 0).then_some(TableId::new(table_id)),
    })
}

/// The holds of a node, in memory and in the catalog.
#[derive(Debug, Default)]
pub struct Holds {
    /// Every hold, by name.
    pub by_name: parking_lot::Mutex<BTreeMap<HoldName, Hold>>,
}

impl Holds {
    /// Where the holds start, as of now: per table, and for holds of no table.
    pub(crate) fn held_from(&self) -> HeldFrom {
        let mut held = HeldFrom {
            node: ChangeSeq::MAX,
            tables: BTreeMap::new(),
        };
        for hold in self.by_name.lock().values() {
            let lowest = match hold.table_id {
                Some(table_id) => held.tables.entry(table_id).or_insert(ChangeSeq::MAX),
                None => &mut held.node,
            };
            *lowest = (*lowest).min(hold.from);
        }
        held
    }
}

/// Where the holds start: a hold that belongs to a table keeps only that table's records; a
/// hold of no table (a backup, a restore) keeps every table's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldFrom {
    node: ChangeSeq,
    tables: BTreeMap<TableId, ChangeSeq>,
}

impl HeldFrom {
    /// The first record of table `table_id` some hold still needs (`ChangeSeq::MAX` when
    /// none does).
    pub(crate) fn of(&self, table_id: TableId) -> ChangeSeq {
        self.tables
            .get(&table_id)
            .map_or(self.node, |table| self.node.min(*table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind with the text existing data folders hold for it.
    fn every_kind() -> Vec<(HoldName, &'static str)> {
        vec![
            (
                HoldName::Publish {
                    table_id: TableId::new(7),
                },
                "publish/7",
            ),
            (
                HoldName::Peer {
                    region: "eu-west-1".into(),
                    table_id: TableId::new(12),
                },
                "peer/eu-west-1/12",
            ),
            (
                HoldName::Inbound {
                    table_id: TableId::new(3),
                },
                "inbound/3",
            ),
            (
                HoldName::ReplicationTopic {
                    table_id: TableId::new(4),
                },
                "replication-topic/4",
            ),
            (
                HoldName::Pitr {
                    table_id: TableId::new(5),
                },
                "pitr/5",
            ),
            (
                HoldName::Backup {
                    backup_id: 0x00ab_cdef_0123_4567,
                },
                "backup/00abcdef01234567",
            ),
            (
                HoldName::Restore {
                    target: "orders.restored".into(),
                },
                "restore/orders.restored",
            ),
        ]
    }

    #[test]
    fn every_kind_keeps_its_stored_encoding_and_reads_back() {
        for (name, stored) in every_kind() {
            assert_eq!(name.to_string(), stored);
            assert_eq!(stored.parse::<HoldName>().expect(stored), name);
        }
    }

    #[test]
    fn a_region_with_a_slash_reads_back() {
        let name = HoldName::Peer {
            region: "eu/west".into(),
            table_id: TableId::new(9),
        };
        assert_eq!(name.to_string().parse::<HoldName>().expect("parses"), name);
    }

    #[test]
    fn text_no_kind_writes_is_corrupt() {
        for text in [
            "",
            "test",
            "publish/",
            "publish/x",
            "publish/07",
            "publish/+7",
            "peer/eu-west-1",
            "peer/eu-west-1/",
            "backup/ff",
            "backup/00ABCDEF01234567",
            "history/1",
        ] {
            assert!(
                matches!(text.parse::<HoldName>(), Err(Error::Corrupt(_))),
                "{text:?}"
            );
        }
    }
}
