//! Which tables are published to Kafka, from where, and how far publishing got.
//!
//! The settings live in the table's definition (so they persist and go with the table). The
//! publisher reports the last sequence it has confirmed in the topic
//! ([`Store::confirm_published`]); that checkpoint is persisted in the catalog and holds the
//! change log back: trimming never removes a record of a published table that is not yet
//! confirmed, whatever the history window says.

use crate::changes::ChangeSeq;
use crate::model::PublishSettings;
use crate::{Error, Result, Store};

/// Where publishing starts when it is turned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishFrom {
    /// With the next change.
    #[default]
    Now,
    /// With the oldest change still in the log (the table's retained history).
    RetainedHistory,
}

/// A published table, as the publishers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTable {
    /// Internal table id.
    pub table_id: u64,
    /// Table name.
    pub table_name: String,
    /// Its settings.
    pub settings: PublishSettings,
    /// The last sequence confirmed in the topic, if any.
    pub confirmed: Option<ChangeSeq>,
}

/// How far a table's publishing is behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PublishingLag {
    /// Durable records not yet confirmed in the topic.
    pub records: u64,
    /// Age of the oldest of them, in seconds.
    pub seconds: f64,
}

/// Catalog key of a table's publishing checkpoint.
fn checkpoint_key(table_id: u64) -> Vec<u8> {
    format!("publish/{table_id:016x}").into_bytes()
}

impl Store {
    /// Turns publishing of a table on (`Some`) or off (`None`). Turning it on again replaces
    /// the settings; the start is then kept unless `from` is given anew.
    ///
    /// # Errors
    /// ResourceNotFound; Validation for an empty topic or bad partition settings.
    pub fn set_publishing(
        &self,
        table_name: &str,
        settings: Option<(PublishSettings, PublishFrom)>,
    ) -> Result<Option<PublishSettings>> {
        let entry = self.table(table_name)?;
        let _ddl = self.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        match settings {
            None => {
                definition.publish = None;
                self.save_definition(&entry, definition)?;
                self.storage.history_holds.lock().remove(&entry.id);
                self.storage
                    .write_catalog(&[], &[checkpoint_key(entry.id)])?;
                Ok(None)
            }
            Some((mut settings, from)) => {
                if settings.topic.is_empty() || settings.topic.len() > 249 {
                    return Err(Error::validation(
                        "a Kafka topic name has 1 to 249 characters",
                    ));
                }
                if settings.partitions < 1 || settings.replication_factor < 1 {
                    return Err(Error::validation(
                        "partitions and replication factor must be at least 1",
                    ));
                }
                settings.start_seq = match (&definition.publish, from) {
                    (_, PublishFrom::RetainedHistory) => self.oldest_retained_seq(),
                    (Some(current), PublishFrom::Now) => current.start_seq,
                    (None, PublishFrom::Now) => {
                        // The next sequence, taken while no commit can take it.
                        self.storage.with_sequence_boundary(Ok)?
                    }
                };
                definition.publish = Some(settings.clone());
                self.storage
                    .history_holds
                    .lock()
                    .entry(entry.id)
                    .or_insert(settings.start_seq);
                self.save_definition(&entry, definition)?;
                Ok(Some(settings))
            }
        }
    }

    /// Every published table with its settings and checkpoint.
    pub fn published_tables(&self) -> Vec<PublishedTable> {
        let mut out: Vec<PublishedTable> = self
            .storage
            .live_tables()
            .iter()
            .filter_map(|t| {
                let settings = t.definition.read().publish.clone()?;
                let confirmed = self
                    .storage
                    .ks
                    .catalog
                    .get(checkpoint_key(t.id))
                    .ok()
                    .flatten()
                    .and_then(|v| <[u8; 8]>::try_from(&*v).ok())
                    .map(u64::from_be_bytes);
                Some(PublishedTable {
                    table_id: t.id,
                    table_name: t.name.clone(),
                    settings,
                    confirmed,
                })
            })
            .collect();
        out.sort_by(|a, b| a.table_name.cmp(&b.table_name));
        out
    }

    /// Records that every change of the table up to `seq` is in its topic: persists the
    /// checkpoint and lets the history window trim up to it.
    ///
    /// # Errors
    /// Storage failures.
    pub fn confirm_published(&self, table_id: u64, seq: ChangeSeq) -> Result<()> {
        // Not synced: a checkpoint lost in a crash only holds more history back, and the
        // publisher decides where to resume from the topic, not from here.
        self.storage
            .ks
            .catalog
            .insert(checkpoint_key(table_id), seq.to_be_bytes())?;
        if let Some(hold) = self.storage.history_holds.lock().get_mut(&table_id) {
            *hold = (*hold).max(seq + 1);
        }
        Ok(())
    }

    /// How far publishing of a table is behind: its records from `from` up to the durable
    /// watermark (counted up to a million), and the age of the oldest of them.
    pub fn publishing_lag(&self, table_id: u64, from: ChangeSeq, now_millis: u64) -> PublishingLag {
        let mut records = 0u64;
        let mut oldest = None;
        for entry in self.table_changes(table_id, from, u64::MAX).take(1_000_000) {
            let Ok((seq, _)) = entry else { break };
            if oldest.is_none() {
                oldest = self
                    .change(seq)
                    .ok()
                    .flatten()
                    .map(|r| r.commit_time_millis);
            }
            records += 1;
        }
        PublishingLag {
            records,
            seconds: oldest.map_or(0.0, |t| now_millis.saturating_sub(t) as f64 / 1000.0),
        }
    }

    /// Restores the history holds of published tables at open: each holds the log from its
    /// checkpoint (or its start).
    pub(crate) fn restore_history_holds(&self) {
        let holds = self
            .published_tables()
            .into_iter()
            .map(|t| {
                let from = t.confirmed.map_or(t.settings.start_seq, |c| c + 1);
                (t.table_id, from.max(t.settings.start_seq))
            })
            .collect();
        *self.storage.history_holds.lock() = holds;
    }
}
