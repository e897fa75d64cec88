//! Named retention holds: how every reader that must not miss a change keeps the log from
//! being trimmed under it. A hold is a [`HoldName`] (one kind per holder: a Kafka publisher, a
//! replica region, a restore, a point-in-time recovery window, ...) and the first sequence its
//! holder still needs; the trimmer never removes a record at or past the lowest hold, whatever
//! the history window says. A delete's tombstone goes only with its REMOVE record, so it stays
//! until every hold, every peer's included, has passed that REMOVE: a replica that has not
//! seen the delete can never bring the item back.
//!
//! Holds persist in the catalog. Setting and releasing one is durable before it returns;
//! advancing one is not synced, because losing an advance in a crash only keeps more history.
//! A hold that belongs to a table goes when the table is deleted.

use std::fmt;
use std::str::FromStr;

use crate::changes::ChangeSeq;
pub use crate::storage::holds::Hold;
use crate::storage::holds::{encode_hold, hold_key};
use crate::{Error, Result, Store};

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
        table_id: u64,
    },
    /// `peer/<region>/<table id>`: a replica region, at the first own-origin change of the
    /// table it has not acknowledged (direct replication transport).
    Peer {
        /// The receiving region.
        region: String,
        /// The replicated table.
        table_id: u64,
    },
    /// `inbound/<table id>`: the records (and so tombstones) of a global table that another
    /// region may still send an older write against.
    Inbound {
        /// The replicated table.
        table_id: u64,
    },
    /// `replication-topic/<table id>`: a global table's own-origin changes not yet in its
    /// replication topic (Kafka replication transport).
    ReplicationTopic {
        /// The replicated table.
        table_id: u64,
    },
    /// `pitr/<table id>`: a table's point-in-time recovery window.
    Pitr {
        /// The recoverable table.
        table_id: u64,
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
        let number = |digits: &str| digits.parse::<u64>().map_err(|_| corrupt());
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

impl Store {
    /// Sets the hold `name` at `from` (creating it, or moving it either way), durably.
    ///
    /// # Errors
    /// Storage failures.
    pub fn set_hold(&self, name: &HoldName, table_id: Option<u64>, from: ChangeSeq) -> Result<()> {
        let hold = Hold {
            name: name.clone(),
            from,
            table_id,
        };
        let mut holds = self.storage.holds.by_name.lock();
        self.storage
            .write_catalog(&[(hold_key(name), encode_hold(&hold))], &[])?;
        holds.insert(hold.name.clone(), hold);
        Ok(())
    }

    /// Moves the hold `name` forward to `from` (never backwards). Not synced: an advance lost
    /// in a crash only keeps more history. Returns false when there is no such hold.
    ///
    /// # Errors
    /// Storage failures.
    pub fn advance_hold(&self, name: &HoldName, from: ChangeSeq) -> Result<bool> {
        let mut holds = self.storage.holds.by_name.lock();
        let Some(hold) = holds.get_mut(name) else {
            return Ok(false);
        };
        if from <= hold.from {
            return Ok(true);
        }
        let moved = Hold {
            from,
            ..hold.clone()
        };
        self.storage
            .put_catalog_buffered(hold_key(name), encode_hold(&moved))?;
        *hold = moved;
        Ok(true)
    }

    /// Releases the hold `name`, durably (nothing happens when there is none).
    ///
    /// # Errors
    /// Storage failures.
    pub fn release_hold(&self, name: &HoldName) -> Result<()> {
        let mut holds = self.storage.holds.by_name.lock();
        if holds.contains_key(name) {
            self.storage.write_catalog(&[], &[hold_key(name)])?;
            holds.remove(name);
        }
        Ok(())
    }

    /// The hold `name`, if set.
    pub fn hold(&self, name: &HoldName) -> Option<Hold> {
        self.storage.holds.by_name.lock().get(name).cloned()
    }

    /// Every hold, by name.
    pub fn holds(&self) -> Vec<Hold> {
        self.storage
            .holds
            .by_name
            .lock()
            .values()
            .cloned()
            .collect()
    }

    /// Releases every hold that belongs to table `table_id` (its deletion).
    pub(crate) fn release_table_holds(&self, table_id: u64) -> Result<()> {
        let names: Vec<HoldName> = self
            .holds()
            .into_iter()
            .filter(|h| h.table_id == Some(table_id))
            .map(|h| h.name)
            .collect();
        for name in names {
            self.release_hold(&name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind with the text existing data folders hold for it.
    fn every_kind() -> Vec<(HoldName, &'static str)> {
        vec![
            (HoldName::Publish { table_id: 7 }, "publish/7"),
            (
                HoldName::Peer {
                    region: "eu-west-1".into(),
                    table_id: 12,
                },
                "peer/eu-west-1/12",
            ),
            (HoldName::Inbound { table_id: 3 }, "inbound/3"),
            (
                HoldName::ReplicationTopic { table_id: 4 },
                "replication-topic/4",
            ),
            (HoldName::Pitr { table_id: 5 }, "pitr/5"),
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
            table_id: 9,
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
