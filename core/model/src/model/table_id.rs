//! [`TableId`]: the internal id that names a table's (or an index's) keys in storage.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A table's internal id: the prefix of its keys in every keyspace, never reused, so a table
/// re-created under the same name is another table.
///
/// A secondary index's id is a `TableId` too, not a type of its own: ids come from one
/// counter (`meta/next_table_id`), an index's entries are prefixed by its id in `indexes`
/// as a table's items are in `items`, and the `stats` keyspace counts both under their ids;
/// what an id names is decided by where it is used, not by its value.
///
/// Keys hold it as 8 big-endian bytes ([`TableId::to_be_bytes`]); JSON documents and hold
/// names hold the plain number, as `Display` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TableId(u64);

crate::numbered::numbered!(TableId);

/// Hex formatting of the number (stream descriptors' catalog keys print ids as hex).
impl fmt::LowerHex for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_written_as_its_plain_number() {
        let id = TableId::new(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<TableId>("42").unwrap(), id);
        assert_eq!(id.to_string(), "42");
        assert_eq!(format!("{id:016x}"), "000000000000002a");
        assert_eq!("42".parse::<TableId>().unwrap(), id);
        assert_eq!(TableId::from_be_bytes(id.to_be_bytes()), id);
    }
}
