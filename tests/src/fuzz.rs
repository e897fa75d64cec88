//! Arbitrary-input testing on the stable toolchain: inputs grown from valid examples by random
//! edits (insertions of the input's own alphabet, deletions, repeats, splices with other
//! examples, truncations), fed to the parsers that take what clients send: request bodies
//! (every synchronous DynamoDB and DynamoDB Streams operation, decoded and run on a store),
//! the expression parser, the number parser and the shard iterator decoder. A target may
//! refuse an input however it likes; it must not panic.
//!
//! `scripts/fuzz.sh` runs the `fuzz` binary over every target; an input that made a target
//! panic is written under `tests/fuzz/<target>/`, and the e2e test `fuzz_regressions` runs
//! every such file again on every test run.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tidemark_core::Engine;
use tidemark_core::model::{AttributeValue, Number};

/// What is fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Request bodies of every synchronous operation.
    Request,
    /// Condition, filter, update, projection and key condition expressions.
    Expression,
    /// DynamoDB numbers.
    Number,
    /// DynamoDB Streams shard iterators.
    Iterator,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [
        Target::Request,
        Target::Expression,
        Target::Number,
        Target::Iterator,
    ];

    /// Its name (`request`, `expression`, `number`, `iterator`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Request => "request",
            Target::Expression => "expression",
            Target::Number => "number",
            Target::Iterator => "iterator",
        }
    }

    /// The target named `name`.
    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Valid inputs the random ones grow from.
    fn seeds(self) -> Vec<String> {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        match self {
            Target::Number => owned(&[
                "0",
                "-1",
                "3.14159",
                "1e10",
                "-1.5E-130",
                "9.9999999999999999999999999999999999999E+125",
                "0001.2300",
                ".5",
                "+7",
                "12345678901234567890123456789012345678",
            ]),
            Target::Expression => owned(&[
                "attribute_exists(#a) AND #b.c[3] > :v",
                "SET #a = :v, b = if_not_exists(b, :z) + :one REMOVE c[2] ADD d :s DELETE e :s",
                "begins_with(#n, :p) OR (size(l) BETWEEN :lo AND :hi) AND NOT contains(s, :x)",
                "#a, b.c, d[0].e",
                "#p = :v AND #s BETWEEN :lo AND :hi",
                "a IN (:a, :b, :c) AND attribute_type(t, :ty)",
            ]),
            Target::Iterator => owned(&[
                "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-01-01T00:00:00.000|1|0|5|1700000000000|0",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "eyJhIjoxfQ==",
            ]),
            Target::Request => owned(&[
                r##"DynamoDB_20120810.CreateTable {"TableName":"fz","KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"s","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"s","AttributeType":"N"}],"BillingMode":"PAY_PER_REQUEST","StreamSpecification":{"StreamEnabled":true,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"##,
                r##"DynamoDB_20120810.PutItem {"TableName":"fz","Item":{"p":{"S":"a"},"s":{"N":"1"},"l":{"L":[{"N":"1"},{"M":{"x":{"SS":["a","b"]}}}]},"b":{"B":"AAE="}},"ConditionExpression":"attribute_not_exists(p) OR #n < :v","ExpressionAttributeNames":{"#n":"n"},"ExpressionAttributeValues":{":v":{"N":"5"}},"ReturnValues":"ALL_OLD"}"##,
                r##"DynamoDB_20120810.UpdateItem {"TableName":"fz","Key":{"p":{"S":"a"},"s":{"N":"1"}},"UpdateExpression":"SET #n = if_not_exists(#n, :z) + :one, l[1].x = :s REMOVE b","ExpressionAttributeNames":{"#n":"n"},"ExpressionAttributeValues":{":z":{"N":"0"},":one":{"N":"1"},":s":{"NS":["1","2"]}},"ReturnValues":"UPDATED_NEW"}"##,
                r##"DynamoDB_20120810.Query {"TableName":"fz","KeyConditionExpression":"p = :p AND s BETWEEN :a AND :b","FilterExpression":"size(l) > :n","ProjectionExpression":"p, s, l[0]","ExpressionAttributeValues":{":p":{"S":"a"},":a":{"N":"0"},":b":{"N":"9"},":n":{"N":"0"}},"Limit":5,"ScanIndexForward":false,"ExclusiveStartKey":{"p":{"S":"a"},"s":{"N":"0"}}}"##,
                r##"DynamoDB_20120810.Scan {"TableName":"fz","Segment":0,"TotalSegments":2,"Select":"COUNT","ScanFilter":{"s":{"AttributeValueList":[{"N":"1"}],"ComparisonOperator":"GE"}}}"##,
                r##"DynamoDB_20120810.BatchWriteItem {"RequestItems":{"fz":[{"PutRequest":{"Item":{"p":{"S":"b"},"s":{"N":"2"}}}},{"DeleteRequest":{"Key":{"p":{"S":"a"},"s":{"N":"1"}}}}]}}"##,
                r##"DynamoDB_20120810.BatchGetItem {"RequestItems":{"fz":{"Keys":[{"p":{"S":"b"},"s":{"N":"2"}}],"ProjectionExpression":"p"}}}"##,
                r##"DynamoDB_20120810.TransactWriteItems {"TransactItems":[{"Put":{"TableName":"fz","Item":{"p":{"S":"t"},"s":{"N":"3"}}}},{"ConditionCheck":{"TableName":"fz","Key":{"p":{"S":"b"},"s":{"N":"2"}},"ConditionExpression":"attribute_exists(p)"}}],"ClientRequestToken":"x"}"##,
                r##"DynamoDB_20120810.ExecuteStatement {"Statement":"SELECT p, l[0].x FROM \"fz\" WHERE p IN ['a', ?] AND s BETWEEN 0 AND 9 AND NOT (n <> 1 OR b IS MISSING) ORDER BY s DESC","Parameters":[{"S":"b"}],"Limit":2}"##,
                r##"DynamoDB_20120810.ExecuteStatement {"Statement":"UPDATE \"fz\" SET n = n + 1, l = list_append(l, [1]), t = set_add(t, <<'x'>>) REMOVE b WHERE p = ? AND s = 1 AND begins_with(q, 'z') RETURNING ALL NEW *","Parameters":[{"S":"a"}]}"##,
                r##"DynamoDB_20120810.ExecuteTransaction {"TransactStatements":[{"Statement":"INSERT INTO \"fz\" VALUE {'p': 'i', 's': 4, 'm': {'k': [1, NULL, TRUE]}}"},{"Statement":"EXISTS(SELECT * FROM \"fz\" WHERE p = 'b' AND s = 2 AND size(p) > 0)"}]}"##,
                r##"DynamoDB_20120810.BatchExecuteStatement {"Statements":[{"Statement":"DELETE FROM \"fz\" WHERE p = ? AND s = ? RETURNING ALL OLD *","Parameters":[{"S":"i"},{"N":"4"}]}]}"##,
                r##"DynamoDB_20120810.UpdateTable {"TableName":"fz","AttributeDefinitions":[{"AttributeName":"g","AttributeType":"S"}],"GlobalSecondaryIndexUpdates":[{"Create":{"IndexName":"gi","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}}]}"##,
                r##"DynamoDB_20120810.UpdateTimeToLive {"TableName":"fz","TimeToLiveSpecification":{"Enabled":true,"AttributeName":"ttl"}}"##,
                r##"DynamoDBStreams_20120810.DescribeStream {"StreamArn":"arn:aws:dynamodb:us-east-1:000000000000:table/fz/stream/2026-01-01T00:00:00.000","Limit":10}"##,
                r##"DynamoDBStreams_20120810.GetRecords {"ShardIterator":"AAAA","Limit":100}"##,
            ]),
        }
    }
}

/// An input grown from `seeds` by 1 to 8 random edits, inserting characters of `alphabet`.
fn mutate(rng: &mut StdRng, seeds: &[String], alphabet: &[char]) -> String {
    let pick = |rng: &mut StdRng| -> Vec<char> {
        seeds
            .choose(rng)
            .map(|s| s.chars().collect())
            .unwrap_or_default()
    };
    let letter = |rng: &mut StdRng| alphabet.choose(rng).copied().unwrap_or('x');
    let mut text = pick(rng);
    for _ in 0..rng.random_range(1..=8) {
        let len = text.len();
        let at = rng.random_range(0..=len);
        match rng.random_range(0..7) {
            0 => text.insert(at, letter(rng)),
            1 if at < len => {
                text.remove(at);
            }
            2 => {
                let end = (at + rng.random_range(1..16)).min(len);
                let piece: Vec<char> = text.get(at..end).unwrap_or_default().to_vec();
                for _ in 0..rng.random_range(1..64) {
                    text.splice(at..at, piece.iter().copied());
                }
            }
            3 => {
                let other = pick(rng);
                let from = rng.random_range(0..=other.len());
                text.truncate(at);
                text.extend(other.into_iter().skip(from));
            }
            4 => text.truncate(at),
            5 => text.insert(
                at,
                char::from_u32(rng.random_range(0..0x3000)).unwrap_or('\u{fffd}'),
            ),
            _ => {
                let replacement = letter(rng);
                if let Some(c) = text.get_mut(at) {
                    *c = replacement;
                }
            }
        }
    }
    text.into_iter().collect()
}

/// Runs `f`; `Err` with the panic's message if it panicked.
///
/// # Errors
/// The panic's message.
pub fn caught(f: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Runs one input through `target`; `Err` with the panic's message if it panicked.
///
/// # Errors
/// The panic's message.
pub fn run_one(target: Target, store: &Engine, input: &str) -> Result<(), String> {
    caught(|| match target {
        Target::Number => {
            let _ = Number::parse(input);
        }
        Target::Iterator => {
            let _ = tidemark_streams::iterator::ShardIterator::decode(input);
        }
        Target::Expression => expression(input),
        Target::Request => {
            let (operation, body) = input.split_once(' ').unwrap_or((input, ""));
            let _ =
                tidemark_cli::server::dispatch::run_operation(store, operation, body.as_bytes());
        }
    })
}

/// Every expression grammar over `text`, with placeholders the seeds use.
fn expression(text: &str) {
    let names: HashMap<String, String> = ["#a", "#b", "#n", "#p", "#s"]
        .iter()
        .map(|n| (n.to_string(), n.trim_start_matches('#').to_string()))
        .collect();
    let values: HashMap<String, AttributeValue> = [
        ":v", ":z", ":one", ":p", ":lo", ":hi", ":x", ":a", ":b", ":c", ":ty", ":s",
    ]
    .iter()
    .map(|v| (v.to_string(), AttributeValue::S("x".into())))
    .collect();
    use tidemark_core::expr::{
        Placeholders, parse_condition, parse_filter, parse_projection, parse_update,
    };
    let _ = parse_condition(text, &mut Placeholders::new(Some(&names), Some(&values)));
    let _ = parse_filter(text, &mut Placeholders::new(Some(&names), Some(&values)));
    let _ = parse_update(text, &mut Placeholders::new(Some(&names), Some(&values)));
    let _ = parse_projection(text, &mut Placeholders::new(Some(&names), Some(&values)));
}

/// The folder of the inputs that once made `target` panic.
pub fn regressions_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(target.name())
}

/// A store in `dir` for the request target (writes acknowledged without fsync).
///
/// # Panics
/// When the store cannot be opened.
pub fn store(dir: &Path) -> Engine {
    let mut config = tidemark_core::StoreConfig::new(dir);
    config.durability = tidemark_core::Durability::Buffer;
    Engine::open(config).expect("open the fuzzing store")
}

/// Runs `cases` generated inputs through `target` from `seed`; returns the inputs that
/// panicked, each with its message.
pub fn run(target: Target, store: &Engine, cases: u64, seed: u64) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = target.seeds();
    let alphabet: Vec<char> = seeds.iter().flat_map(|s| s.chars()).collect();
    let mut failures = Vec::new();
    for _ in 0..cases {
        let input = mutate(&mut rng, &seeds, &alphabet);
        if let Err(message) = run_one(target, store, &input) {
            failures.push((input, message));
        }
    }
    failures
}
