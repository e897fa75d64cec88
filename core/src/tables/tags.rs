//! TagResource, UntagResource and ListTagsOfResource, and the rules tags follow.

use super::Tables;
use crate::model::Tag;
use crate::{Error, Result};

impl Tables {
    /// Adds or replaces tags on a table.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a bad ARN or tag.
    pub fn tag_resource(&self, arn: &str, tags: Vec<Tag>) -> Result<()> {
        let entry = self.store.table_by_arn(arn)?;
        if tags.is_empty() {
            return Err(Error::validation(
                "1 validation error detected: Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        check_tags(&tags)?;
        let _ddl = self.store.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        for tag in tags {
            definition.tags.retain(|t| t.key != tag.key);
            definition.tags.push(tag);
        }
        if definition.tags.len() > 50 {
            return Err(Error::validation(
                "The number of tags exceeds the limit of 50",
            ));
        }
        self.store.save_definition(&entry, definition)
    }

    /// Removes tags from a table.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a bad ARN.
    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        let entry = self.store.table_by_arn(arn)?;
        let _ddl = self.store.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        definition.tags.retain(|t| !keys.contains(&t.key));
        self.store.save_definition(&entry, definition)
    }

    /// The tags of a table.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a bad ARN.
    pub fn list_tags(&self, arn: &str) -> Result<Vec<Tag>> {
        Ok(self.store.table_by_arn(arn)?.definition.read().tags.clone())
    }
}

/// Most tags on one table.
const MAX_TAGS: usize = 50;

/// Checks tags the way AWS does: keys of 1–128 and values of up to 256 characters drawn from
/// letters, digits, white space and `_ . : / = + - @`; at most 50 per table.
pub(super) fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: The number of tags exceeds the limit of {MAX_TAGS}"
        )));
    }
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    for tag in tags {
        let key_len = tag.key.chars().count();
        if !(1..=128).contains(&key_len) || !tag.key.chars().all(allowed) {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128 and satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)$",
                tag.key
            )));
        }
        if tag.value.chars().count() > 256 || !tag.value.chars().all(allowed) {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{}' at 'tags.member.value' failed to satisfy constraint: Member must have length at most 256 and satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)$",
                tag.value
            )));
        }
    }
    Ok(())
}
