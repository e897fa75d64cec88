//! The TTL index: `table id | expiry second | item key` → nothing, one entry per item whose TTL
//! attribute holds a non-negative Number. The commit path writes and removes entries in the
//! item's own batch; the expiry sweep reads a table's due entries in expiry order.
//!
//! The index is only a candidate list: whether an item really expires is decided again, under
//! its key lock, from the item itself ([`is_expired`]).

use super::Storage;
use crate::OrFailure;
use tidemark_model::Result;
use tidemark_model::TableId;
use tidemark_model::model::{AttributeValue, Item};

impl Storage {
    /// The TTL index entries of table `table_id`, in expiry order (the sweep stops reading
    /// at the first one not yet due).
    pub fn ttl_entries(&self, table_id: TableId) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.ks
            .ttl
            .prefix(table_id.to_be_bytes())
            .map(|guard| Ok(guard.key().or_failure()?.to_vec()))
    }

    /// Removes TTL index entries (by their whole keys) in one batch.
    pub fn remove_ttl_entries(&self, keys: Vec<Vec<u8>>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for key in keys {
            batch.remove(&self.ks.ttl, key);
        }
        batch.commit().or_failure()?;
        Ok(())
    }

    /// Removes every TTL index entry of table `table_id` (TTL was disabled).
    pub fn purge_ttl_entries(&self, table_id: TableId) -> Result<()> {
        self.purge_prefix(&self.ks.ttl, &table_id.to_be_bytes())
    }
}

/// Items whose expiry lies further back than this never expire: DynamoDB treats such values
/// as malformed (five years of 365 days).
pub const MAX_EXPIRED_AGE_SECS: u64 = 5 * 365 * 24 * 3600;

/// The whole second an item's TTL attribute names, when it is a non-negative Number.
pub fn expiry_second(item: &Item, attribute: &str) -> Option<u64> {
    let seconds = ttl_seconds(item, attribute)?;
    // `as` saturates: values past u64 (e.g. milliseconds by mistake, 1e100) sort last.
    (seconds >= 0.0).then(|| seconds.floor() as u64)
}

fn ttl_seconds(item: &Item, attribute: &str) -> Option<f64> {
    match item.get(attribute)? {
        AttributeValue::N(n) => n.to_string().parse::<f64>().ok(),
        _ => None,
    }
}

/// True when the item's TTL attribute is a Number of epoch seconds before `now_millis` and
/// no more than five years before it. Strings, sets and other types never expire.
pub fn is_expired(item: &Item, attribute: &str, now_millis: u64) -> bool {
    let Some(seconds) = ttl_seconds(item, attribute) else {
        return false;
    };
    let now = now_millis as f64 / 1000.0;
    seconds < now && seconds >= now - MAX_EXPIRED_AGE_SECS as f64
}

/// The index key of an item (its storage key) expiring at `second`.
pub fn ttl_key(table_id: TableId, second: u64, item_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + item_key.len());
    out.extend_from_slice(&table_id.to_be_bytes());
    out.extend_from_slice(&second.to_be_bytes());
    out.extend_from_slice(item_key);
    out
}

/// Splits an index key into its expiry second and the item's storage key.
pub fn split_ttl_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let second = key.get(8..16)?;
    let second = u64::from_be_bytes(<[u8; 8]>::try_from(second).ok()?);
    Some((second, key.get(16..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_model::model::Number;

    fn item_with(value: AttributeValue) -> Item {
        [("exp".to_string(), value)].into()
    }

    fn number(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    #[test]
    fn only_recent_past_numbers_expire() {
        let now = 1_700_000_000_000;
        assert!(is_expired(&item_with(number("1699999999")), "exp", now));
        assert!(is_expired(&item_with(number("1699999999.5")), "exp", now));
        assert!(is_expired(&item_with(number("169999999.9e1")), "exp", now));
        assert!(!is_expired(&item_with(number("1700000000")), "exp", now));
        assert!(!is_expired(&item_with(number("1700000001")), "exp", now));
        assert!(
            !is_expired(&item_with(number("162777600")), "exp", now),
            "older than five years"
        );
        assert!(
            !is_expired(&item_with(number("1699999999000")), "exp", now),
            "milliseconds by mistake"
        );
        assert!(!is_expired(
            &item_with(AttributeValue::S("1699999999".into())),
            "exp",
            now
        ));
        assert!(!is_expired(&item_with(number("1")), "other", now));
    }

    #[test]
    fn expiry_seconds_and_keys() {
        assert_eq!(expiry_second(&item_with(number("12.9")), "exp"), Some(12));
        assert_eq!(expiry_second(&item_with(number("-1")), "exp"), None);
        assert_eq!(
            expiry_second(&item_with(number("1e100")), "exp"),
            Some(u64::MAX)
        );
        let key = ttl_key(TableId::new(7), 42, b"item");
        assert_eq!(split_ttl_key(&key), Some((42, b"item".as_slice())));
    }
}
