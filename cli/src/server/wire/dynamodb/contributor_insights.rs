//! The Contributor Insights calls (Describe-, List- and UpdateContributorInsights), answered
//! as DynamoDB answers them for tables where Contributor Insights is off, which on this node
//! it always is: there are no CloudWatch rules to report to. Turning it on is refused with a
//! clear error (docs/compatibility.md).

use serde::{Deserialize, Serialize};
use tidemark_core::Store;

use super::common::named_table;
use super::common::required;
use crate::server::error::ApiError;

/// What DynamoDB reports of a table or index without Contributor Insights.
const DISABLED: &str = "DISABLED";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeContributorInsightsInput {
    table_name: Option<String>,
    index_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContributorInsightsOutput {
    table_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_name: Option<String>,
    contributor_insights_status: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListContributorInsightsInput {
    table_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListContributorInsightsOutput {
    contributor_insights_summaries: Vec<ContributorInsightsOutput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateContributorInsightsInput {
    table_name: Option<String>,
    index_name: Option<String>,
    contributor_insights_action: Option<String>,
}

/// Checks the table (and index) exist, and says they have Contributor Insights off.
fn disabled(
    store: &Store,
    table_name: Option<String>,
    index_name: Option<String>,
) -> Result<ContributorInsightsOutput, ApiError> {
    let table_name = named_table(store, table_name)?;
    let definition = store.table_definition(&table_name)?;
    if let Some(index) = &index_name {
        let known = definition
            .global_secondary_indexes
            .iter()
            .map(|i| &i.index_name)
            .chain(
                definition
                    .local_secondary_indexes
                    .iter()
                    .map(|i| &i.index_name),
            )
            .any(|name| name == index);
        if !known {
            return Err(ApiError::from(tidemark_core::Error::ResourceNotFound(
                format!("Requested resource not found: Index: {index} not found"),
            )));
        }
    }
    Ok(ContributorInsightsOutput {
        table_name,
        index_name,
        contributor_insights_status: DISABLED,
    })
}

pub(crate) fn describe_contributor_insights(
    store: &Store,
    input: DescribeContributorInsightsInput,
) -> Result<ContributorInsightsOutput, ApiError> {
    disabled(store, input.table_name, input.index_name)
}

pub(crate) fn list_contributor_insights(
    store: &Store,
    input: ListContributorInsightsInput,
) -> Result<ListContributorInsightsOutput, ApiError> {
    // Only tables with Contributor Insights on are listed: none.
    if let Some(table) = &input.table_name {
        store.table_definition(table)?;
    }
    Ok(ListContributorInsightsOutput {
        contributor_insights_summaries: Vec::new(),
    })
}

pub(crate) fn update_contributor_insights(
    store: &Store,
    input: UpdateContributorInsightsInput,
) -> Result<ContributorInsightsOutput, ApiError> {
    let action = required(
        input.contributor_insights_action,
        "contributorInsightsAction",
    )?;
    match action.as_str() {
        "DISABLE" => disabled(store, input.table_name, input.index_name),
        "ENABLE" => {
            disabled(store, input.table_name, input.index_name)?;
            Err(ApiError::validation(
                "Contributor Insights is not available on this endpoint: it reports to \
                 Amazon CloudWatch, which a Tidemark node does not have",
            ))
        }
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'contributorInsightsAction' failed to satisfy constraint: Member must satisfy enum value set: [ENABLE, DISABLE]"
        ))),
    }
}
