//! Making fjall's journal durable without holding up writers.
//!
//! `Database::persist(SyncData)` holds fjall's journal lock through the fdatasync, so every
//! commit that arrives meanwhile waits a whole fsync (several milliseconds under load). The
//! [`JournalSync`] instead hands the journal's buffer to the OS under the lock
//! (`persist(Buffer)`, microseconds) and then fdatasyncs the active journal file through its
//! own handle, outside the lock, while commits go on appending to it.
//!
//! IMPORTANT: this is sound because of how fjall 3 keeps journals, which
//! `tests::the_synced_file_is_the_one_fjall_writes` pins down: journals are `<id>.jnl` files
//! in the database folder, the active one has the highest id, and a journal is synced
//! (`SyncAll`) before the next one is created. So whatever `persist(Buffer)` handed to the
//! OS is either in the journal that is still the highest afterwards, which we fdatasync, or
//! in one that was sealed and synced by fjall itself. fdatasync acts on the file, not on the
//! handle, and fjall pre-allocates and syncs each journal's length when it creates it, so
//! the data sync alone makes the appended batches durable.

use std::fs::File;
use std::path::{Path, PathBuf};

use fjall::{Database, PersistMode};

/// Syncs one database's journal outside fjall's journal lock; used by one thread.
#[derive(Debug)]
pub(crate) struct JournalSync {
    dir: PathBuf,
    /// The active journal as last seen: its id and a handle to sync it through.
    active: Option<(u64, File)>,
}

impl JournalSync {
    pub(crate) fn new(dir: &Path) -> JournalSync {
        JournalSync {
            dir: dir.to_path_buf(),
            active: None,
        }
    }

    /// Makes every batch committed before the call durable.
    pub(crate) fn sync(&mut self, db: &Database) -> std::io::Result<()> {
        db.persist(PersistMode::Buffer)
            .map_err(std::io::Error::other)?;
        let id = active_journal_id(&self.dir)?;
        let file = match self.active.take() {
            Some((open_id, file)) if open_id == id => file,
            _ => File::open(self.dir.join(format!("{id}.jnl")))?,
        };
        let synced = file.sync_data();
        self.active = Some((id, file));
        synced
    }
}

/// The id of the highest-numbered journal in `dir`: the one fjall appends to.
fn active_journal_id(dir: &Path) -> std::io::Result<u64> {
    let mut highest = None;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            highest = highest.max(Some(id));
        }
    }
    highest.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no journal file (<id>.jnl) in {}", dir.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjall::KeyspaceCreateOptions;

    /// Bytes that do not compress (fjall compresses large journal entries).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect()
    }

    fn active_journal_len(dir: &Path) -> (u64, u64) {
        let id = active_journal_id(dir).unwrap();
        let len = std::fs::read(dir.join(format!("{id}.jnl")))
            .unwrap()
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |p| p as u64 + 1);
        (id, len)
    }

    /// Guards the layout the sync relies on: if a fjall upgrade moves or renames its
    /// journals, this fails instead of syncs silently missing the data.
    #[test]
    fn the_synced_file_is_the_one_fjall_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let ks = db.keyspace("k", KeyspaceCreateOptions::default).unwrap();
        let mut journal = JournalSync::new(dir.path());
        journal.sync(&db).unwrap();
        let (id, before) = active_journal_len(dir.path());
        ks.insert("key", noise(4096, 1)).unwrap();
        journal.sync(&db).unwrap();
        let (same_id, after) = active_journal_len(dir.path());
        assert_eq!(id, same_id);
        assert!(
            after >= before + 4096,
            "the write is in the journal that was synced ({before} -> {after} bytes)"
        );
        assert_eq!(journal.active.as_ref().map(|(id, _)| *id), Some(id));

        // fjall seals a journal past 64 MB when it next flushes, and goes on in the next id.
        for n in 0..66 {
            ks.insert("big", noise(1 << 20, n)).unwrap();
        }
        ks.rotate_memtable_and_wait().unwrap();
        let (rotated_id, _) = active_journal_len(dir.path());
        assert!(rotated_id > id, "the journal was rotated");
        let (_, before) = active_journal_len(dir.path());
        ks.insert("after", noise(4096, 99)).unwrap();
        journal.sync(&db).unwrap();
        let (_, after) = active_journal_len(dir.path());
        assert!(after >= before + 4096);
        assert_eq!(
            journal.active.as_ref().map(|(id, _)| *id),
            Some(rotated_id),
            "the sync follows the journal to its new file"
        );
    }

    #[test]
    fn the_highest_journal_is_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["3.jnl", "12.jnl", "7.jnl", "lock", "keyspaces", "99.sst"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(active_journal_id(dir.path()).unwrap(), 12);
        let empty = tempfile::tempdir().unwrap();
        assert!(active_journal_id(empty.path()).is_err());
    }
}
