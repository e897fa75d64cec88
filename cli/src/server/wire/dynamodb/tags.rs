//! TagResource, UntagResource and ListTagsOfResource.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::Tag;

use super::common::required;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagResourceInput {
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
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

/// TagResource and UntagResource answer with an empty JSON object.
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsOfResourceOutput {
    tags: Vec<Tag>,
}

pub(crate) fn tag_resource(store: &Store, input: TagResourceInput) -> Result<Empty, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    store.tag_resource(&arn, required(input.tags, "tags")?)?;
    Ok(Empty {})
}

pub(crate) fn untag_resource(store: &Store, input: UntagResourceInput) -> Result<Empty, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    store.untag_resource(&arn, &required(input.tag_keys, "tagKeys")?)?;
    Ok(Empty {})
}

pub(crate) fn list_tags_of_resource(
    store: &Store,
    input: ListTagsOfResourceInput,
) -> Result<ListTagsOfResourceOutput, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    Ok(ListTagsOfResourceOutput {
        tags: store.list_tags(&arn)?,
    })
}
