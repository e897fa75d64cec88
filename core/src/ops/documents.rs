//! Seams of the store that the exports, imports, publishing and replication use: the records
//! their jobs keep in the catalog (`doc/<kind>/<id>`: jobs, replicated changes put aside), and whether a table was empty just before a change
//! (read as of that change, as a restore reads it).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::changes::ChangeSeq;
use crate::{Error, Result, Store};

fn document_key(kind: &str, id: &str) -> Vec<u8> {
    format!("doc/{kind}/{id}").into_bytes()
}

impl Store {
    /// Whether `table` held no item just before change `seq`: then its changes from `seq` on
    /// rebuild it exactly (what a Kafka topic published from `seq` needs to be a full history).
    ///
    /// IMPORTANT: the caller holds the log from `seq` on (a retention hold).
    ///
    /// # Errors
    /// ResourceNotFound; Internal when the log from `seq` on is no longer kept.
    pub fn table_empty_before(&self, table: &str, seq: ChangeSeq) -> Result<bool> {
        let entry = self.table(table)?;
        let at = seq.saturating_prev();
        self.storage.wait_durable(at)?;
        let mut image = self.storage.table_image(entry.id, &entry.shape, at)?;
        Ok(image.next().transpose()?.is_none())
    }

    /// Saves a job's record `id` of `kind` (exports, imports), durably.
    ///
    /// # Errors
    /// Storage failures.
    pub fn save_document(&self, kind: &str, id: &str, document: &impl Serialize) -> Result<()> {
        let json = serde_json::to_vec(document).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .write_catalog(&[(document_key(kind, id), json)], &[])
    }

    /// Removes the records `ids` of `kind`, durably, in one batch.
    ///
    /// # Errors
    /// Storage failures.
    pub fn delete_documents(&self, kind: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| document_key(kind, id)).collect();
        self.storage.write_catalog(&[], &keys)
    }

    /// Every record of `kind`, in id order.
    ///
    /// # Errors
    /// Storage failures; Corrupt for a record that does not decode.
    pub fn documents<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>> {
        let prefix = document_key(kind, "");
        let mut out = Vec::new();
        for value in self.storage.catalog_values(&prefix) {
            let value = value?;
            out.push(
                serde_json::from_slice(&value)
                    .map_err(|e| Error::Corrupt(format!("a {kind} record: {e}")))?,
            );
        }
        Ok(out)
    }
}
