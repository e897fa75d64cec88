//! DynamoDB's exact answers to malformed requests (issue 29): one table of rows, each a raw
//! request, the error type and message DynamoDB gives for it, and where that answer was
//! recorded. Raw JSON, not the SDK, so requests the SDK would refuse before sending still
//! reach the node.

use tidemark_tests::{TestNode, raw_request};

/// One malformed request and DynamoDB's answer to it.
struct Row {
    /// The operation (after `DynamoDB_20120810.`).
    operation: &'static str,
    /// The request body.
    body: String,
    /// The exception name (after `#` in `__type`).
    error: &'static str,
    /// The whole message.
    message: String,
    /// Where DynamoDB's answer was recorded: "dynalite" is architect/dynalite's tests, each
    /// assertion written against DynamoDB; "conformance" is nubo-db/dynamodb-conformance's
    /// tests, run against AWS first; "AWS capture" its record of AWS's answers in us-east-1
    /// (captures/cross-region-latest.json, 2026-06-23).
    source: &'static str,
}

fn row(
    operation: &'static str,
    body: impl Into<String>,
    error: &'static str,
    message: impl Into<String>,
    source: &'static str,
) -> Row {
    Row {
        operation,
        body: body.into(),
        error,
        message: message.into(),
        source,
    }
}

const MISSING: &str = "Requested resource not found";
const MISSING_TABLE: &str = "Requested resource not found: Table: missing not found";
const KEY_MISMATCH: &str = "The provided key element does not match the schema";
const NESTED: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

/// A string value inside `levels` single-member maps, as DynamoDB JSON.
fn nested(levels: usize) -> String {
    nested_around(levels, r#"{"S":"leaf"}"#)
}

/// `leaf` inside `levels` single-member maps.
fn nested_around(levels: usize, leaf: &str) -> String {
    (0..levels).fold(leaf.to_string(), |inner, _| {
        format!(r#"{{"M":{{"n":{inner}}}}}"#)
    })
}

/// Every row, by family.
fn rows() -> Vec<Row> {
    let not_found = "ResourceNotFoundException";
    let invalid = "ValidationException";
    vec![
        // 1. A missing table: item operations name no table, table operations do.
        row(
            "GetItem",
            r#"{"TableName":"missing","Key":{"p":{"S":"a"}}}"#,
            not_found,
            MISSING,
            "dynalite test/getItem.js",
        ),
        row(
            "GetItem",
            r#"{"TableName":"missing","Key":{}}"#,
            not_found,
            MISSING,
            "dynalite test/getItem.js: an empty key, table checked first",
        ),
        row(
            "PutItem",
            r#"{"TableName":"missing","Item":{"p":{"S":"a"}}}"#,
            not_found,
            MISSING,
            "dynalite test/putItem.js",
        ),
        row(
            "UpdateItem",
            r#"{"TableName":"missing","Key":{"p":{"S":"a"}}}"#,
            not_found,
            MISSING,
            "dynalite test/updateItem.js",
        ),
        row(
            "DeleteItem",
            r#"{"TableName":"missing","Key":{"p":{"S":"a"}}}"#,
            not_found,
            MISSING,
            "dynalite test/deleteItem.js",
        ),
        row(
            "Query",
            r#"{"TableName":"missing","KeyConditionExpression":"p = :p","ExpressionAttributeValues":{":p":{"S":"a"}}}"#,
            not_found,
            MISSING,
            "dynalite test/query.js",
        ),
        row(
            "Scan",
            r#"{"TableName":"missing"}"#,
            not_found,
            MISSING,
            "dynalite test/scan.js",
        ),
        row(
            "BatchGetItem",
            r#"{"RequestItems":{"missing":{"Keys":[{"p":{"S":"a"}}]}}}"#,
            not_found,
            MISSING,
            "dynalite test/batchGetItem.js",
        ),
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{"missing":[{"PutRequest":{"Item":{"p":{"S":"a"}}}}]}}"#,
            not_found,
            MISSING,
            "dynalite test/batchWriteItem.js",
        ),
        row(
            "TransactGetItems",
            r#"{"TransactItems":[{"Get":{"TableName":"missing","Key":{"p":{"S":"a"}}}}]}"#,
            not_found,
            MISSING,
            "issue 29, family 1",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"missing","Item":{"p":{"S":"a"}}}}]}"#,
            not_found,
            MISSING,
            "issue 29, family 1",
        ),
        row(
            "DescribeTable",
            r#"{"TableName":"missing"}"#,
            not_found,
            MISSING_TABLE,
            "dynalite test/describeTable.js",
        ),
        row(
            "UpdateTable",
            r#"{"TableName":"missing","BillingMode":"PAY_PER_REQUEST"}"#,
            not_found,
            MISSING_TABLE,
            "dynalite test/updateTable.js",
        ),
        row(
            "DeleteTable",
            r#"{"TableName":"missing"}"#,
            not_found,
            MISSING_TABLE,
            "dynalite test/deleteTable.js",
        ),
        // 8. Empty and repeated binary sets, worded unlike the other sets.
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"},"b":{"BS":[]}}}"#,
            invalid,
            "1 validation error detected: One or more parameter values were invalid: Binary sets should not be empty",
            "dynalite test/putItem.js, in the envelope PutItem now adds (conformance valueLayers.test.ts)",
        ),
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"},"b":{"SS":[]}}}"#,
            invalid,
            "1 validation error detected: One or more parameter values were invalid: An string set  may not be empty",
            "AWS capture b_put_empty_ss, in the envelope PutItem now adds (conformance putItem.test.ts)",
        ),
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"},"b":{"BS":["Yg==","Yg=="]}}}"#,
            invalid,
            "1 validation error detected: One or more parameter values were invalid: Input collection [\"Yg==\",\"Yg==\"]of type BS contains duplicates.",
            "conformance valueLayers.test.ts (PutItem's current value checks, AWS 2026-10-09)",
        ),
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{"things":[{"PutRequest":{"Item":{"p":{"S":"a"},"b":{"SS":["b","a","b"]}}}}]}}"#,
            invalid,
            "One or more parameter values were invalid: Input collection [b, a, b] contains duplicates.",
            "conformance valueLayers.test.ts (BatchWriteItem's older value checks, AWS 2026-10-09)",
        ),
        row(
            "GetItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"},"b":{"SS":["b","a","b"]}}}"#,
            invalid,
            "One or more parameter values were invalid: Input collection [\"a\", \"b\", \"b\"] contains duplicates.",
            "conformance valueLayers.test.ts (GetItem: current value checks, no envelope)",
        ),
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"},"n":{"N":"1e9223372036854775808"}}}"#,
            invalid,
            "1 validation error detected: The parameter cannot be converted to a numeric value: 1e9223372036854775808",
            "conformance numberExponent.test.ts (an exponent past a 64-bit integer), in PutItem's envelope",
        ),
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{"things":[{"PutRequest":{"Item":{"p":{"S":"a"},"n":{"N":"1e2147483647"}}}}]}}"#,
            invalid,
            "Number underflow. Attempting to store a number with magnitude smaller than supported range",
            "conformance valueLayers.test.ts (the older checks read numbers as Java's BigDecimal)",
        ),
        // 2. Required parameters, checked before the table is looked up.
        row(
            "BatchGetItem",
            r#"{"RequestItems":{}}"#,
            invalid,
            "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "conformance error-messages/batchGetItem.test.ts, 2026-09 sweep: every region but me-central-1",
        ),
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{}}"#,
            invalid,
            "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "conformance error-messages/batchWriteItem.test.ts (its newer of two accepted answers)",
        ),
        row(
            "CreateTable",
            r#"{"AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],"KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            invalid,
            "The parameter 'TableName' is required but was not present in the request",
            "conformance error-messages/createTable.test.ts",
        ),
        row(
            "PutItem",
            r#"{"Item":{"p":{"S":"a"}}}"#,
            invalid,
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
            "AWS capture s_put_table_null",
        ),
        row(
            "BatchGetItem",
            r#"{}"#,
            invalid,
            "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null",
            "dynalite test/batchGetItem.js",
        ),
        row(
            "Scan",
            r#"{"TableName":"missing","Segment":1}"#,
            invalid,
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            "dynalite test/scan.js",
        ),
        row(
            "Scan",
            r#"{"TableName":"missing","TotalSegments":1}"#,
            invalid,
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            "dynalite test/scan.js",
        ),
        row(
            "Scan",
            r#"{"TableName":"missing","Segment":1,"TotalSegments":1}"#,
            invalid,
            "The Segment parameter is zero-based and must be less than parameter TotalSegments",
            "conformance error-messages/scan.test.ts (dynalite's older answer adds the values)",
        ),
        // 5. CreateTable's key schema, in DynamoDB's order of checks.
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"a"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "Invalid KeySchema: Some index key attribute have no definition",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"a","AttributeType":"S"}],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"a"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "Invalid KeySchema: Some index key attribute have no definition",
            "dynalite test/createTable.js: a key repeated, one definition",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"a","AttributeType":"S"},{"AttributeName":"b","AttributeType":"S"}],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"a"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"a","AttributeType":"S"},{"AttributeName":"b","AttributeType":"S"}],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"b"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"a","AttributeType":"S"},{"AttributeName":"b","AttributeType":"S"}],"KeySchema":[{"KeyType":"RANGE","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"b"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"a","AttributeType":"S"},{"AttributeName":"c","AttributeType":"S"},{"AttributeName":"b","AttributeType":"S"}],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"RANGE","AttributeName":"b"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            invalid,
            "Invalid KeySchema: Some index key attribute have no definition",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"a"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1},"BillingMode":"PAY_PER_REQUEST"}"#,
            invalid,
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            "dynalite test/createTable.js: billing is checked before the key schema",
        ),
        // 4. Enum violations name the member by its number, from 1.
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"b","AttributeType":"SS"}],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"HASH","AttributeName":"a"}],"ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}"#,
            invalid,
            "1 validation error detected: Value 'SS' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
            "dynalite test/createTable.js",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"a","AttributeType":"S"}],"KeySchema":[{"KeyType":"HASH","AttributeName":"a"},{"KeyType":"Woop","AttributeName":"b"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            invalid,
            "1 validation error detected: Value 'Woop' at 'keySchema.2.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]",
            "dynalite test/createTable.js (keySchema.3.member.keyType there, the third element)",
        ),
        // 6. Expression attribute values without an expression that takes them.
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"}},"ExpressionAttributeValues":{":a":{"S":"x"}}}"#,
            invalid,
            "1 validation error detected: ExpressionAttributeValues can only be specified when using expressions",
            "conformance error-messages/putItem.test.ts (eu-west-2 and us-east-1, 2026-10-09; dynalite's older answer named the expression)",
        ),
        row(
            "DeleteItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ExpressionAttributeValues":{":a":{"S":"x"}}}"#,
            invalid,
            "1 validation error detected: ExpressionAttributeValues can only be specified when using expressions",
            "conformance error-messages/deleteItem.test.ts (2026-10)",
        ),
        row(
            "UpdateItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ExpressionAttributeValues":{":a":{"S":"x"}}}"#,
            invalid,
            "1 validation error detected: ExpressionAttributeValues can only be specified when using expressions",
            "as PutItem and DeleteItem now answer (no recorded UpdateItem answer in the new wording)",
        ),
        row(
            "Query",
            r#"{"TableName":"things","KeyConditions":{"p":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"a"}]}},"ExpressionAttributeValues":{":a":{"S":"x"}}}"#,
            invalid,
            "ExpressionAttributeValues can only be specified when using expressions: FilterExpression and KeyConditionExpression are null",
            "dynalite test/query.js",
        ),
        row(
            "Scan",
            r#"{"TableName":"things","ProjectionExpression":"a","ExpressionAttributeValues":{":a":{"S":"x"}}}"#,
            invalid,
            "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null",
            "dynalite test/scan.js (a ProjectionExpression takes no values)",
        ),
        row(
            "GetItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ProjectionExpression":"a,,b"}"#,
            invalid,
            "Invalid ProjectionExpression: Syntax error; token: \",\", near: \",,b\"",
            "issue 29, family 6",
        ),
        row(
            "TransactGetItems",
            r#"{"TransactItems":[{"Get":{"TableName":"things","Key":{"p":{"S":"a"}},"ProjectionExpression":"a,,b"}}]}"#,
            invalid,
            "Invalid ProjectionExpression: Syntax error; token: \",\", near: \",,b\"",
            "issue 29, family 6: as in GetItem",
        ),
        // 13. Smaller families.
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{"things":[{"PutRequest":{"Item":{"q":{"S":"a"}}}}]}}"#,
            invalid,
            KEY_MISMATCH,
            "dynalite test/batchWriteItem.js: a key attribute missing",
        ),
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{"things":[{"PutRequest":{"Item":{"p":{"N":"1"}}}}]}}"#,
            invalid,
            KEY_MISMATCH,
            "dynalite test/batchWriteItem.js: a key attribute of another type",
        ),
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"q":{"S":"a"}}}"#,
            invalid,
            "One or more parameter values were invalid: Missing the key p in the item",
            "dynalite test/putItem.js: PutItem names the attribute",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT * FROM things","Parameters":[]}"#,
            invalid,
            "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "DynamoDB's answer, quoted in l-v-yonsama's AwsDynamoServiceClient (a comment on why it leaves an empty Parameters out)",
        ),
        // 3. Constraint messages: names a table call takes (its ARN too), lists and numbers.
        row(
            "PutItem",
            r#"{"TableName":"","Item":{"p":{"S":"a"}}}"#,
            invalid,
            "1 validation error detected: Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "AWS capture s_put_table_empty: one violation, as the name may be an ARN",
        ),
        row(
            "PutItem",
            r#"{"TableName":"bad table!@#","Item":{"p":{"S":"a"}}}"#,
            invalid,
            "1 validation error detected: Value 'bad table!@#' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            "AWS capture s_put_table_badchars",
        ),
        row(
            "PutItem",
            format!(r#"{{"TableName":"{}","Item":{{"p":{{"S":"a"}}}}}}"#, "a".repeat(256)),
            invalid,
            format!(
                "1 validation error detected: Value '{}' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255",
                "a".repeat(256)
            ),
            "AWS capture s_put_table_long",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"ab","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],"KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            invalid,
            "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3",
            "AWS capture s_ct_table_short",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"},{"AttributeName":"extra","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"},{"AttributeName":"extra","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            invalid,
            "1 validation error detected: Value '[KeySchemaElement(attributeName=pk, keyType=HASH), KeySchemaElement(attributeName=sk, keyType=RANGE), KeySchemaElement(attributeName=extra, keyType=RANGE)]' at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2",
            "AWS capture c_ct_3keys",
        ),
        row(
            "BatchWriteItem",
            format!(
                r#"{{"RequestItems":{{"things":[{}]}}}}"#,
                (0..26)
                    .map(|i| format!(r#"{{"PutRequest":{{"Item":{{"p":{{"S":"bw-{i}"}}}}}}}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            invalid,
            format!(
                "1 validation error detected: Value '{{things=[{}]}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
                (0..26)
                    .map(|i| format!("WriteRequest(putRequest=PutRequest(item={{p=AttributeValue(s=bw-{i}, n=null, b=null, iNT=null, dECIMAL=null, dOUBLE=null, sS=null, nS=null, bS=null, iNTSET=null, dECIMALSET=null, dOUBLESET=null, m=null, l=null, nULL=null, bOOL=null)}}, workloadProfileName=null), deleteRequest=null)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "AWS capture c_bw_over25",
        ),
        row(
            "BatchGetItem",
            format!(
                r#"{{"RequestItems":{{"things":{{"Keys":[{}]}}}}}}"#,
                (0..101)
                    .map(|i| format!(r#"{{"p":{{"S":"bg-{i}"}}}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            invalid,
            "1 validation error detected: Value at 'RequestItems.things.member.Keys' failed to satisfy constraint: Member must have length less than or equal to 100",
            "conformance error-messages/batchGetItem.test.ts",
        ),
        row(
            "Query",
            r#"{"TableName":"things","KeyConditionExpression":"p = :v","ExpressionAttributeValues":{":v":{"S":"v"}},"Limit":0}"#,
            invalid,
            "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
            "conformance error-messages/query.test.ts",
        ),
        row(
            "Scan",
            r#"{"TableName":"things","Limit":0}"#,
            invalid,
            "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
            "conformance error-messages/scan.test.ts (newest; its May version pinned `Value '0' at 'limit'`)",
        ),
        row(
            "Scan",
            r#"{"TableName":"things","Segment":-1,"TotalSegments":4}"#,
            invalid,
            "1 validation error detected: Value at 'Segment' failed to satisfy constraint: Member must have value greater than or equal to 0",
            "conformance error-messages/scan.test.ts",
        ),
        row(
            "DeleteItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ReturnValues":"ALL_NEW"}"#,
            invalid,
            "1 validation error detected: ReturnValues can only be ALL_OLD or NONE",
            "conformance error-messages/deleteItem.test.ts",
        ),
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"}},"Expected":{"a":{"ComparisonOperator":"EQ"}}}"#,
            invalid,
            "1 validation error detected: One or more parameter values were invalid: Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a",
            "conformance error-messages/putItem.test.ts",
        ),
        row(
            "Scan",
            r#"{"TableName":"things","ExclusiveStartKey":{"bad":{"S":"p"}}}"#,
            invalid,
            "The provided starting key is invalid",
            "conformance error-messages/scan.test.ts and query.test.ts",
        ),
        row(
            "Scan",
            r#"{"TableName":"things","Select":"SPECIFIC_ATTRIBUTES"}"#,
            invalid,
            "1 validation error detected: Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            "conformance error-messages/scan.test.ts and query.test.ts",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"bad!name","Item":{"p":{"S":"a"}}}}]}"#,
            invalid,
            "1 validation error detected: Value 'bad!name' at 'transactItems.1.member.put.tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            "conformance error-messages/transactWriteItems.test.ts",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"things","Item":{"p":{"S":""}}}}]}"#,
            invalid,
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: p",
            "conformance error-messages/transactWriteItems.test.ts: refused outright, not cancelled",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{}]}"#,
            invalid,
            "1 validation error detected: Value '' at 'transactItems' failed to satisfy constraint: TransactWriteRequest should contain Delete or Put or Update or ConditionCheck",
            "conformance error-messages/transactWriteItems.test.ts",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"things","Item":{"p":{"S":"a"}}}}],"ClientRequestToken":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","ReturnConsumedCapacity":"BOGUS"}"#,
            invalid,
            "1 validation error detected: Value at 'ClientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36",
            "conformance validation-ordering/transactions.test.ts: the token first and alone",
        ),
        row(
            "BatchWriteItem",
            r#"{"RequestItems":{"things":[{"PutRequest":{"Item":{"p":{"S":"a"}}}}]},"ReturnConsumedCapacity":"BOGUS","ReturnItemCollectionMetrics":"BOGUS2"}"#,
            invalid,
            "2 validation errors detected: Value 'BOGUS' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; Value 'BOGUS2' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]",
            "conformance validation-ordering/batchOperations.test.ts",
        ),
        row(
            "BatchGetItem",
            r#"{"RequestItems":{"bad!name":{"Keys":[{"pk":{"S":"a"}}]}},"ReturnConsumedCapacity":"BOGUS"}"#,
            invalid,
            "2 validation errors detected: Value '{\"bad!name\":{\"Keys\":[{\"pk\":{\"S\":\"a\"}}]}}' at 'requestItems' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 3, Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]; Value 'BOGUS' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]",
            "conformance validation-ordering/batchOperations.test.ts (BatchGetItem quotes the map as JSON)",
        ),
        row(
            "UpdateItem",
            r#"{"TableName":"","ReturnConsumedCapacity":"INVALID","ReturnValues":"INVALID","UpdateExpression":"SET a = :a","ExpressionAttributeValues":{":a":{"S":"x"}}}"#,
            invalid,
            "4 validation errors detected: Value 'INVALID' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1; Value 'INVALID' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]; Value null at 'key' failed to satisfy constraint: Member must not be null",
            "conformance validation-ordering/updateItem.test.ts",
        ),
        row(
            "CreateTable",
            r#"{"TableName":"abc","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],"KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST","StreamSpecification":{"StreamEnabled":false,"StreamViewType":"NEW_IMAGE"}}"#,
            invalid,
            "One or more parameter values were invalid: Table is being created with a stream disabled, UpdateViewType should not be specified",
            "conformance error-messages/createTable.test.ts (sic)",
        ),
        row(
            "TransactGetItems",
            r#"{"TransactItems":[]}"#,
            invalid,
            "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "conformance error-messages/transactGetItems.test.ts",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[]}"#,
            invalid,
            "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "conformance error-messages/transactWriteItems.test.ts",
        ),
        // Several faults: every violation, in the order DynamoDB lists them for the operation.
        row(
            "PutItem",
            r#"{"TableName":"","Item":{"p":{"S":"a"}},"ReturnValues":"INVALID"}"#,
            invalid,
            "2 validation errors detected: Value 'INVALID' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]; Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "AWS capture o_put_empty_table_bad_rv",
        ),
        row(
            "PutItem",
            r#"{"TableName":"things","Item":{"p":{"S":"a"}},"ReturnValues":"INVALID","ReturnConsumedCapacity":"INVALID","ReturnItemCollectionMetrics":"INVALID"}"#,
            invalid,
            "3 validation errors detected: Value 'INVALID' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]; Value 'INVALID' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; Value 'INVALID' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]",
            "AWS capture o_put_three_bad_enums",
        ),
        row(
            "DeleteItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ReturnValues":"INVALID","ReturnConsumedCapacity":"INVALID"}"#,
            invalid,
            "2 validation errors detected: Value 'INVALID' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]; Value 'INVALID' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]",
            "AWS capture o_del_two_bad_enums",
        ),
        row(
            "UpdateItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ReturnValues":"INVALID","ReturnConsumedCapacity":"INVALID"}"#,
            invalid,
            "2 validation errors detected: Value 'INVALID' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; Value 'INVALID' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
            "AWS capture o_upd_two_bad_enums: UpdateItem lists them the other way round",
        ),
        row(
            "UpdateItem",
            r#"{"TableName":"","Key":{}}"#,
            invalid,
            "1 validation error detected: Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "AWS capture o_upd_empty_table",
        ),
        // 6. The parser's error on a character no token starts with.
        row(
            "GetItem",
            r#"{"TableName":"things","Key":{"p":{"S":"a"}},"ProjectionExpression":"!!! INVALID !!!"}"#,
            invalid,
            "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\"",
            "conformance error-messages/getItem.test.ts",
        ),
        row(
            "TransactGetItems",
            r#"{"TransactItems":[{"Get":{"TableName":"things","Key":{"p":{"S":"a"}},"ProjectionExpression":"!!! INVALID !!!"}}]}"#,
            invalid,
            "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\"",
            "conformance error-messages/transactGetItems.test.ts",
        ),
        // 11. A table's ARN of another account or region.
        row(
            "GetItem",
            r#"{"TableName":"arn:aws:dynamodb:us-east-1:111111111111:table/things","Key":{"p":{"S":"a"}}}"#,
            "AccessDeniedException",
            "Access is denied",
            "aws-controllers-k8s/dynamodb-controller docs/api-quirks DDB-TABLE-011 (verified on AWS 2026-10-08)",
        ),
        row(
            "DescribeTable",
            r#"{"TableName":"arn:aws:dynamodb:eu-west-1:000000000000:table/things"}"#,
            invalid,
            "1 validation error detected: Invalid AWS region in 'arn:aws:dynamodb:eu-west-1:000000000000:table/things'",
            "aws-controllers-k8s/dynamodb-controller DDB-TABLE-011 and DDB-TABLE-442",
        ),
        row(
            "ListTagsOfResource",
            r#"{"ResourceArn":"arn:aws:dynamodb:us-east-1:111111111111:table/things"}"#,
            "AccessDeniedException",
            "Access is denied",
            "conformance tier2/tags/basic.test.ts (an ARN of an account not the caller's)",
        ),
        // Several faults beside a value nested too deep. Past about 62 levels (127 of JSON)
        // DynamoDB reads a request the older way: older enum words, and the depth reported
        // after every other fault, before the table is looked up. A transaction reports each
        // action's faults in turn.
        row(
            "PutItem",
            format!(
                r#"{{"TableName":"missing","Item":{{"p":{{"S":"a"}}}},"Expected":{{"a":{{"Value":{}}},"b":{{"Exists":false}}}},"ConditionalOperator":"XOR"}}"#,
                nested(100)
            ),
            invalid,
            "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]",
            "conformance validation-ordering/deepRequests.test.ts",
        ),
        row(
            "DeleteItem",
            format!(
                r#"{{"TableName":"missing","Key":{{"p":{}}},"ReturnValues":"BOGUS"}}"#,
                nested(100)
            ),
            invalid,
            "1 validation error detected: Value 'BOGUS' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
            "conformance validation-ordering/deepRequests.test.ts",
        ),
        row(
            "DeleteItem",
            format!(
                r##"{{"TableName":"missing","Key":{{"p":{{"S":"a"}}}},"ConditionExpression":"#d = :deep","ExpressionAttributeNames":{{"#d":"d"}},"ExpressionAttributeValues":{{":deep":{}}},"ReturnValues":"UPDATED_NEW"}}"##,
                nested(100)
            ),
            invalid,
            "ReturnValues can only be ALL_OLD or NONE",
            "conformance validation-ordering/deepRequests.test.ts: bare, the older form",
        ),
        row(
            "PutItem",
            format!(
                r#"{{"TableName":"missing","Item":{{"p":{{"S":"a"}},"d":{}}}}}"#,
                nested(100)
            ),
            invalid,
            NESTED,
            "conformance validation-ordering/deepRequests.test.ts: before the table",
        ),
        row(
            "TransactWriteItems",
            format!(
                r#"{{"TransactItems":[{{"Put":{{"TableName":"missing","Item":{{"p":{{"S":"a"}},"":{{"S":"x"}}}}}}}},{{"Put":{{"TableName":"missing","Item":{{"p":{{"S":"b"}},"d":{}}}}}}}]}}"#,
                nested(100)
            ),
            invalid,
            "Empty attribute name",
            "conformance validation-ordering/deepRequests.test.ts",
        ),
        row(
            "TransactWriteItems",
            format!(
                r#"{{"TransactItems":[{{"Delete":{{"TableName":"missing","Key":{{"p":{}}},"ConditionExpression":"a = = b"}}}}]}}"#,
                nested(100)
            ),
            invalid,
            r#"Invalid ConditionExpression: Syntax error; token: "=", near: "= = b""#,
            "conformance validation-ordering/deepRequests.test.ts",
        ),
        row(
            "TransactWriteItems",
            format!(
                r#"{{"TransactItems":[{{"Delete":{{"TableName":"missing","Key":{{"p":{}}}}}}},{{"Put":{{"TableName":"missing","Item":{{"p":{{"S":"a"}}}},"ConditionExpression":"a = = b"}}}}]}}"#,
                nested(40)
            ),
            invalid,
            NESTED,
            "conformance validation-ordering/deepRequests.test.ts: 40 levels, in its action's turn",
        ),
        row(
            "TransactWriteItems",
            format!(
                r#"{{"TransactItems":[{{"ConditionCheck":{{"TableName":"things","Key":{{"p":{{"S":"a"}}}},"ConditionExpression":"attribute_not_exists("}}}},{{"Put":{{"TableName":"things","Item":{{"p":{{"S":"b"}},"d":{}}}}}}}]}}"#,
                nested(32)
            ),
            invalid,
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "(""#,
            "conformance validation-ordering/transactions.test.ts",
        ),
        row(
            "TransactWriteItems",
            format!(
                r#"{{"TransactItems":[{{"Update":{{"TableName":"missing","Key":{{"p":{{"S":"a"}}}},"UpdateExpression":"SET {}","ExpressionAttributeValues":{{":v":{{"S":"x"}}}}}}}}]}}"#,
                (0..500).map(|i| format!("a{i} = :v")).collect::<Vec<_>>().join(", ")
            ),
            invalid,
            "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size;",
            "conformance validation-ordering/deepRequests.test.ts: an UpdateExpression's names no size",
        ),
        // A request's own faults before a missing table.
        row(
            "Query",
            r#"{"TableName":"missing","KeyConditionExpression":"p = :p AND begins_with(s, :n)","ExpressionAttributeValues":{":p":{"S":"q"},":n":{"N":"1"}}}"#,
            invalid,
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
            "conformance validation-ordering/queryKeyCondition.test.ts",
        ),
        row(
            "Query",
            r#"{"TableName":"missing","KeyConditions":{"p":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"a"}]}},"QueryFilter":{"b":{"ComparisonOperator":"NULL"},"c":{"ComparisonOperator":"NULL"}},"ConditionalOperator":"XOR","Select":"BOGUS"}"#,
            invalid,
            "Failed to satisfy constraint: Member must satisfy enum value set: [ALL, OR]",
            "conformance validation-ordering/query.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT p FROM \"missing\" WHERE p = ? AND v < ?","Parameters":[{"S":"x"},{"BOOL":true}]}"#,
            invalid,
            "Incorrect operand type for operator or function; operator or function: <, operand type: BOOL",
            "conformance validation-ordering/partiql.test.ts",
        ),
        // PartiQL's parameters: the first fault in document order, however deep.
        row(
            "ExecuteStatement",
            format!(
                r#"{{"Statement":"SELECT * FROM \"things\" WHERE p = 'a' AND x = ? AND y = ?","Parameters":[{},{{"N":"abc"}}]}}"#,
                nested(100)
            ),
            invalid,
            NESTED,
            "conformance error-messages/partiqlParameterNumbers.test.ts",
        ),
        row(
            "ExecuteStatement",
            format!(
                r#"{{"Statement":"SELECT * FROM \"things\" WHERE p = 'a' AND x = ? AND y = ?","Parameters":[{{"N":"abc"}},{}]}}"#,
                nested(100)
            ),
            invalid,
            "The parameter cannot be converted to a numeric value: abc",
            "conformance error-messages/partiqlParameterNumbers.test.ts",
        ),
        row(
            "ExecuteStatement",
            format!(
                r#"{{"Statement":"SELECT * FROM \"things\" WHERE p = 'a' AND x = ?","Parameters":[{}]}}"#,
                nested_around(40, r#"{"N":"abc"}"#)
            ),
            invalid,
            NESTED,
            "conformance error-messages/partiqlParameterNumbers.test.ts: the depth is met first",
        ),
        // The older value checks wrap a fault in an expression value with its placeholder.
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Update":{"TableName":"things","Key":{"p":{"S":"a"}},"UpdateExpression":"SET n = :v","ExpressionAttributeValues":{":v":{"N":""}}}}]}"#,
            invalid,
            "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value for key :v",
            "conformance error-messages/valueLayers.test.ts (us-east-1, eu-west-1, us-west-2)",
        ),
        row(
            "TransactWriteItems",
            r#"{"TransactItems":[{"ConditionCheck":{"TableName":"things","Key":{"p":{"S":"a"}},"ConditionExpression":"t = :t","ExpressionAttributeValues":{":t":{"SS":["b","a","b"]}}}}]}"#,
            invalid,
            "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: Input collection [b, a, b] contains duplicates. for key :t",
            "conformance error-messages/valueLayers.test.ts (us-east-1, eu-west-1, us-west-2)",
        ),
        // One request, two ways of naming attributes, each table's block consistent.
        row(
            "BatchGetItem",
            r#"{"RequestItems":{"things":{"Keys":[{"p":{"S":"a"}}],"ProjectionExpression":"p"},"pairs":{"Keys":[{"p":{"S":"a"},"s":{"S":"b"}}],"AttributesToGet":["p"]}}}"#,
            invalid,
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
            "conformance error-messages/batchGetItem.test.ts (the type; the words are the one-table refusal's)",
        ),
        // PartiQL branches of one partition that DynamoDB reads as overlapping ranges.
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT * FROM \"pairs\" WHERE p = 'a' AND x <> '1' OR p = 'a' AND s = '2'"}"#,
            invalid,
            "Overlapping conditions with range keys are not supported in where clause",
            "conformance error-messages/partiqlGrammar.test.ts",
        ),
        // PartiQL's refusals that end with where they are, `at line:column:length`.
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT attribute_exists(s) FROM \"pairs\" WHERE p = 'a'"}"#,
            invalid,
            "Unexpected path component at 1:8:16",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT * FROM \"pairs\" WHERE p = 'a' AND\n EXISTS(s)"}"#,
            invalid,
            "Unrecognized function: exists at 2:2:6",
            "conformance error-messages/partiqlFunctions.test.ts (a second line: ours)",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"UPDATE \"pairs\" SET t = set_add(ss, <<'x'>>) WHERE p = 'a' AND s = 'b'"}"#,
            invalid,
            "The first argument to SET_ADD must equal the assignment value at 1:24:7",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"UPDATE \"pairs\" SET ss = set_delete(ss, 'a') WHERE p = 'a' AND s = 'b'"}"#,
            invalid,
            "The second argument to SET_DELETE must be a value with type SET at 1:36:2",
            "conformance error-messages/partiqlFunctions.test.ts: the first argument's place",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"UPDATE \"pairs\" SET ss = set_add(ss) WHERE p = 'a' AND s = 'b'"}"#,
            invalid,
            "SET_ADD must have exactly two arguments at 1:25:7",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT * FROM \"pairs\" WHERE p = 'a' AND set_add(ss, <<'x'>>) = ss"}"#,
            invalid,
            "Unrecognized function: set_add at 1:41:7",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"INSERT INTO \"pairs\" VALUE {'p': 'a', 's': 'b', 'ss': set_add(<<'a'>>, <<'b'>>)}"}"#,
            invalid,
            "Unsupported data type: set_add under key root at 1:54:7",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"UPDATE \"pairs\" SET ss = set_add(ss, <<'x', 'x'>>) WHERE p = 'a' AND s = 'b'"}"#,
            invalid,
            "One or more parameter values were invalid: Input collection [x, x] contains duplicates.",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteStatement",
            r#"{"Statement":"SELECT * FROM \"pairs\" WHERE p = 'a' AND attribute_exists(m.inner)"}"#,
            invalid,
            "Statement wasn't well formed, can't be processed: Invalid path dot component",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
        row(
            "ExecuteTransaction",
            r#"{"TransactStatements":[{"Statement":"EXISTS(SELECT * FROM \"pairs\" WHERE p = 'a' AND s = 'b')"},{"Statement":"UPDATE \"pairs\" SET z = 1 WHERE p = 'n' AND s = 'b'"}]}"#,
            invalid,
            "Validation failed in TransactStatements[0]: EXISTS() must contain a single item read with additional condition",
            "conformance error-messages/partiqlFunctions.test.ts",
        ),
    ]
}

#[tokio::test]
async fn malformed_requests_get_dynamodb_exact_answers() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    create_things(&endpoint).await;
    create_table(
        &endpoint,
        r#"{"TableName":"pairs","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"s","AttributeType":"S"}],"KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"s","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}"#,
    )
    .await;
    let mut wrong = Vec::new();
    for row in rows() {
        let target = format!("DynamoDB_20120810.{}", row.operation);
        let answer = raw_request(&endpoint, Some(&target), row.body.clone()).await;
        let json = answer.json();
        let got = (
            answer.error_name(),
            json["message"].as_str().unwrap_or_default().to_string(),
        );
        if answer.status != 400 || got != (row.error.to_string(), row.message.to_string()) {
            wrong.push(format!(
                "{} {}\n  expected {}: {}\n  got {} {}: {}\n  source: {}",
                row.operation,
                row.body,
                row.error,
                row.message,
                answer.status,
                got.0,
                got.1,
                row.source
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn a_transaction_action_that_does_not_fit_its_table_cancels_it_with_a_validation_error() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    create_things(&endpoint).await;
    // Source: the Alternator suite's test_transact.py (checked against DynamoDB) for
    // TransactWriteItems; issue 29 for TransactGetItems, which answers the same way.
    for (operation, body) in [
        (
            "TransactGetItems",
            r#"{"TransactItems":[{"Get":{"TableName":"things","Key":{"p":{"S":"a"}}}},{"Get":{"TableName":"things","Key":{"q":{"S":"a"}}}}]}"#,
        ),
        (
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"things","Item":{"p":{"S":"a"}}}},{"Put":{"TableName":"things","Item":{"p":{"N":"7"}}}}]}"#,
        ),
    ] {
        let answer = raw_request(
            &endpoint,
            Some(&format!("DynamoDB_20120810.{operation}")),
            body,
        )
        .await;
        let json = answer.json();
        assert_eq!(
            answer.error_name(),
            "TransactionCanceledException",
            "{operation}: {json}"
        );
        // DynamoDB capitalises this exception's `Message`.
        assert_eq!(
            json["Message"],
            "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ValidationError]",
            "{operation}"
        );
        let reasons = &json["CancellationReasons"];
        assert_eq!(
            reasons[0],
            serde_json::json!({"Code": "None"}),
            "{operation}"
        );
        assert_eq!(reasons[1]["Code"], "ValidationError", "{operation}");
        assert!(reasons[1]["Message"].is_string(), "{operation}: {json}");
    }
}

#[tokio::test]
async fn an_update_table_that_changes_nothing_is_refused() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let created = raw_request(
        &endpoint,
        Some("DynamoDB_20120810.CreateTable"),
        r#"{"TableName":"provisioned","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],"KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"ProvisionedThroughput":{"ReadCapacityUnits":5,"WriteCapacityUnits":7}}"#,
    )
    .await;
    assert_eq!(created.status, 200);
    let same = raw_request(
        &endpoint,
        Some("DynamoDB_20120810.UpdateTable"),
        r#"{"TableName":"provisioned","ProvisionedThroughput":{"ReadCapacityUnits":5,"WriteCapacityUnits":7}}"#,
    )
    .await;
    // Source: dynalite test/updateTable.js.
    assert_eq!(same.error_name(), "ValidationException");
    assert_eq!(
        same.json()["message"],
        "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: 5. Requested ReadCapacityUnits: 5. Current WriteCapacityUnits provisioned for the table: 7. Requested WriteCapacityUnits: 7. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
    );
    let changed = raw_request(
        &endpoint,
        Some("DynamoDB_20120810.UpdateTable"),
        r#"{"TableName":"provisioned","ProvisionedThroughput":{"ReadCapacityUnits":6,"WriteCapacityUnits":7}}"#,
    )
    .await;
    assert_eq!(changed.status, 200);
}

/// Creates the table `things`, keyed by the string `p`.
async fn create_things(endpoint: &str) {
    create_table(
        endpoint,
        r#"{"TableName":"things","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],"KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
    )
    .await;
}

/// Creates the table a CreateTable `request` describes.
async fn create_table(endpoint: &str, request: &'static str) {
    let created = raw_request(endpoint, Some("DynamoDB_20120810.CreateTable"), request).await;
    assert_eq!(
        created.status,
        200,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
}

#[tokio::test]
async fn contributor_insights_answer_as_for_a_table_where_it_is_off() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let call = async |operation: &str, body: &str| {
        raw_request(
            &endpoint,
            Some(&format!("DynamoDB_20120810.{operation}")),
            body.to_string(),
        )
        .await
    };
    create_things(&endpoint).await;
    let described = call("DescribeContributorInsights", r#"{"TableName":"things"}"#).await;
    assert_eq!(described.status, 200);
    assert_eq!(
        described.json(),
        serde_json::json!({"TableName": "things", "ContributorInsightsStatus": "DISABLED"})
    );
    let listed = call("ListContributorInsights", "{}").await;
    assert_eq!(
        listed.json(),
        serde_json::json!({"ContributorInsightsSummaries": []})
    );
    let disabled = call(
        "UpdateContributorInsights",
        r#"{"TableName":"things","ContributorInsightsAction":"DISABLE"}"#,
    )
    .await;
    assert_eq!(disabled.json()["ContributorInsightsStatus"], "DISABLED");
    let enabled = call(
        "UpdateContributorInsights",
        r#"{"TableName":"things","ContributorInsightsAction":"ENABLE"}"#,
    )
    .await;
    assert_eq!(enabled.error_name(), "ValidationException");
    let missing = call("DescribeContributorInsights", r#"{"TableName":"missing"}"#).await;
    assert_eq!(missing.error_name(), "ResourceNotFoundException");
    let no_index = call(
        "DescribeContributorInsights",
        r#"{"TableName":"things","IndexName":"nope"}"#,
    )
    .await;
    assert_eq!(no_index.error_name(), "ResourceNotFoundException");
}

#[tokio::test]
async fn a_batch_statement_whose_parameters_cannot_be_read_fails_alone() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    create_things(&endpoint).await;
    let select = r#"SELECT * FROM \"things\" WHERE p = ?"#;
    let body = format!(
        r#"{{"Statements":[{{"Statement":"{select}","Parameters":[{{"N":"1e99999999999"}}]}},{{"Statement":"{select}","Parameters":[{}]}},{{"Statement":"{select}","Parameters":[{{"S":"fine"}}]}}]}}"#,
        nested(100)
    );
    let answer = raw_request(
        &endpoint,
        Some("DynamoDB_20120810.BatchExecuteStatement"),
        body,
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let responses = answer.json()["Responses"].clone();
    assert_eq!(
        responses[0]["Error"],
        serde_json::json!({"Code": "ValidationError", "Message": "The parameter cannot be converted to a numeric value: 1e99999999999"})
    );
    assert_eq!(
        responses[1]["Error"],
        serde_json::json!({"Code": "ValidationError", "Message": NESTED})
    );
    assert!(responses[2].get("Error").is_none(), "{responses}");
}

#[tokio::test]
async fn a_value_nested_too_deep_is_never_written_however_deep() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    create_things(&endpoint).await;
    let call = async |operation: &str, body: String| {
        raw_request(
            &endpoint,
            Some(&format!("DynamoDB_20120810.{operation}")),
            body,
        )
        .await
    };
    for levels in [32, 40, 63, 100, 900] {
        let put = call(
            "PutItem",
            format!(
                r#"{{"TableName":"things","Item":{{"p":{{"S":"put"}},"d":{}}}}}"#,
                nested(levels)
            ),
        )
        .await;
        let transaction = call(
            "TransactWriteItems",
            format!(
                r#"{{"TransactItems":[{{"Put":{{"TableName":"things","Item":{{"p":{{"S":"tx"}},"d":{}}}}}}}]}}"#,
                nested(levels)
            ),
        )
        .await;
        let update = call(
            "UpdateItem",
            format!(
                r#"{{"TableName":"things","Key":{{"p":{{"S":"upd"}}}},"UpdateExpression":"SET d = :d","ExpressionAttributeValues":{{":d":{}}}}}"#,
                nested(levels)
            ),
        )
        .await;
        for answer in [put, transaction, update] {
            assert_eq!(
                answer.error_name(),
                "ValidationException",
                "{levels} levels"
            );
            assert!(
                answer.json()["message"].as_str().unwrap().contains(NESTED),
                "{levels} levels: {}",
                String::from_utf8_lossy(&answer.body)
            );
        }
    }
    let scanned = call("Scan", r#"{"TableName":"things"}"#.to_string()).await;
    assert_eq!(scanned.json()["Count"], 0);
}
