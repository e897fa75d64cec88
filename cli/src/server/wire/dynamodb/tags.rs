//! TagResource, UntagResource and ListTagsOfResource.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::model::Tag;

use super::common::required;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagResourceInput {
    resource_arn: Option<String>,
    tags: Option<Vec<WireTag>>,
}

/// A tag as sent: a missing key or value is a validation error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTag {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UntagResourceInput {
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsOfResourceInput {
    resource_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsOfResourceOutput {
    tags: Vec<Tag>,
}

pub(crate) fn tag_resource(engine: &Engine, input: TagResourceInput) -> Result<(), ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    let tags = required(input.tags, "tags")?
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(Tag {
                key: required(t.key, &format!("tags.{}.member.key", i + 1))?,
                value: required(t.value, &format!("tags.{}.member.value", i + 1))?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    engine.tables.tag_resource(&arn, tags)?;
    Ok(())
}

pub(crate) fn untag_resource(engine: &Engine, input: UntagResourceInput) -> Result<(), ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    engine
        .tables
        .untag_resource(&arn, &required(input.tag_keys, "tagKeys")?)?;
    Ok(())
}

pub(crate) fn list_tags_of_resource(
    engine: &Engine,
    input: ListTagsOfResourceInput,
) -> Result<ListTagsOfResourceOutput, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    Ok(ListTagsOfResourceOutput {
        tags: engine.tables.list_tags(&arn)?,
    })
}
