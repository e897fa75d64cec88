//! Arbitrary-input testing on the stable toolchain: inputs grown from valid examples by random
//! edits (insertions of the input's own alphabet, deletions, repeats, splices with other
//! examples, truncations), fed to the parsers that take what clients send: request bodies
//! (every DynamoDB and DynamoDB Streams operation of the dispatcher's table, run as `POST /`
//! runs it on a node's services),
//! the expression parser, the number parser and the shard iterator decoder. A target may
//! refuse an input however it likes; it must not panic.
//!
//! `scripts/fuzz.sh` runs the `fuzz` binary over every target; an input that made a target
//! panic is written under `tests/fuzz/<target>/`, and the e2e test `fuzz_regressions` runs
//! every such file again on every test run.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use axum::body::Bytes;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tidemark_cli::server::dispatch::{run_operation, targets};
use tidemark_cli::server::{AppState, NodeState};
use tidemark_core::Engine;
use tidemark_core::model::{AttributeValue, Number};
use tidemark_replicator::Replicator;
use tidemark_replicator::peers::ReplicationConfig;
use tidemark_streams::publish::kafka::Publishers;
use tidemark_streams::transfer::Transfers;

/// What is fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Requests (`<X-Amz-Target> <body>`) to every operation.
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
            Target::Request => with_every_operation(owned(&[
                r##"DynamoDB_20120810.CreateTable {"TableName":"fzz","KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"s","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"s","AttributeType":"N"}],"BillingMode":"PAY_PER_REQUEST","StreamSpecification":{"StreamEnabled":true,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"##,
                r##"DynamoDB_20120810.PutItem {"TableName":"fzz","Item":{"p":{"S":"a"},"s":{"N":"1"},"l":{"L":[{"N":"1"},{"M":{"x":{"SS":["a","b"]}}}]},"b":{"B":"AAE="}},"ConditionExpression":"attribute_not_exists(p) OR #n < :v","ExpressionAttributeNames":{"#n":"n"},"ExpressionAttributeValues":{":v":{"N":"5"}},"ReturnValues":"ALL_OLD"}"##,
                r##"DynamoDB_20120810.UpdateItem {"TableName":"fzz","Key":{"p":{"S":"a"},"s":{"N":"1"}},"UpdateExpression":"SET #n = if_not_exists(#n, :z) + :one, l[1].x = :s REMOVE b","ExpressionAttributeNames":{"#n":"n"},"ExpressionAttributeValues":{":z":{"N":"0"},":one":{"N":"1"},":s":{"NS":["1","2"]}},"ReturnValues":"UPDATED_NEW"}"##,
                r##"DynamoDB_20120810.Query {"TableName":"fzz","KeyConditionExpression":"p = :p AND s BETWEEN :a AND :b","FilterExpression":"size(l) > :n","ProjectionExpression":"p, s, l[0]","ExpressionAttributeValues":{":p":{"S":"a"},":a":{"N":"0"},":b":{"N":"9"},":n":{"N":"0"}},"Limit":5,"ScanIndexForward":false,"ExclusiveStartKey":{"p":{"S":"a"},"s":{"N":"0"}}}"##,
                r##"DynamoDB_20120810.Scan {"TableName":"fzz","Segment":0,"TotalSegments":2,"Select":"COUNT","ScanFilter":{"s":{"AttributeValueList":[{"N":"1"}],"ComparisonOperator":"GE"}}}"##,
                r##"DynamoDB_20120810.BatchWriteItem {"RequestItems":{"fzz":[{"PutRequest":{"Item":{"p":{"S":"b"},"s":{"N":"2"}}}},{"DeleteRequest":{"Key":{"p":{"S":"a"},"s":{"N":"1"}}}}]}}"##,
                r##"DynamoDB_20120810.BatchGetItem {"RequestItems":{"fzz":{"Keys":[{"p":{"S":"b"},"s":{"N":"2"}}],"ProjectionExpression":"p"}}}"##,
                r##"DynamoDB_20120810.TransactWriteItems {"TransactItems":[{"Put":{"TableName":"fzz","Item":{"p":{"S":"t"},"s":{"N":"3"}}}},{"ConditionCheck":{"TableName":"fzz","Key":{"p":{"S":"b"},"s":{"N":"2"}},"ConditionExpression":"attribute_exists(p)"}}],"ClientRequestToken":"x"}"##,
                r##"DynamoDB_20120810.ExecuteStatement {"Statement":"SELECT p, l[0].x FROM \"fzz\" WHERE p IN ['a', ?] AND s BETWEEN 0 AND 9 AND NOT (n <> 1 OR b IS MISSING) ORDER BY s DESC","Parameters":[{"S":"b"}],"Limit":2}"##,
                r##"DynamoDB_20120810.ExecuteStatement {"Statement":"UPDATE \"fzz\" SET n = n + 1, l = list_append(l, [1]), t = set_add(t, <<'x'>>) REMOVE b WHERE p = ? AND s = 1 AND begins_with(q, 'z') RETURNING ALL NEW *","Parameters":[{"S":"a"}]}"##,
                r##"DynamoDB_20120810.ExecuteTransaction {"TransactStatements":[{"Statement":"INSERT INTO \"fzz\" VALUE {'p': 'i', 's': 4, 'm': {'k': [1, NULL, TRUE]}}"},{"Statement":"EXISTS(SELECT * FROM \"fzz\" WHERE p = 'b' AND s = 2 AND size(p) > 0)"}]}"##,
                r##"DynamoDB_20120810.BatchExecuteStatement {"Statements":[{"Statement":"DELETE FROM \"fzz\" WHERE p = ? AND s = ? RETURNING ALL OLD *","Parameters":[{"S":"i"},{"N":"4"}]}]}"##,
                r##"DynamoDB_20120810.UpdateTable {"TableName":"fzz","AttributeDefinitions":[{"AttributeName":"g","AttributeType":"S"}],"GlobalSecondaryIndexUpdates":[{"Create":{"IndexName":"gi","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}}]}"##,
                r##"DynamoDB_20120810.UpdateTimeToLive {"TableName":"fzz","TimeToLiveSpecification":{"Enabled":true,"AttributeName":"ttl"}}"##,
                r##"DynamoDBStreams_20120810.DescribeStream {"StreamArn":"arn:aws:dynamodb:us-east-1:000000000000:table/fzz/stream/2026-01-01T00:00:00.000","Limit":10}"##,
                r##"DynamoDBStreams_20120810.GetRecords {"ShardIterator":"AAAA","Limit":100}"##,
            ])),
        }
    }
}

/// `seeds`, plus an empty request to every operation of the node's table that none of them
/// names, so that random edits reach every operation.
fn with_every_operation(mut seeds: Vec<String>) -> Vec<String> {
    for target in targets() {
        let named = format!("{target} ");
        if !seeds.iter().any(|seed| seed.starts_with(&named)) {
            seeds.push(format!("{named}{{}}"));
        }
    }
    seeds
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
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|panic| panic_message(&*panic))
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// Runs one input through `target`; `Err` with the panic's message if it panicked.
///
/// # Errors
/// The panic's message.
pub fn run_one(target: Target, subject: &Subject, input: &str) -> Result<(), String> {
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
            let body = Bytes::copy_from_slice(body.as_bytes());
            let _ = subject
                .runtime
                .block_on(run_operation(&subject.node, operation, body));
        }
    })
    .and_then(|()| subject.pool_panic())
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

/// What the targets run on: for the request target, a node's services around a store (no
/// Kafka, no peers, no export root, so no request leaves the process or writes outside the
/// store's folder) and a runtime to run its operations on.
#[derive(Debug)]
pub struct Subject {
    node: AppState,
    runtime: tokio::runtime::Runtime,
    /// The name of the runtime's threads, its blocking pool's included.
    threads: String,
}

/// Panics on the threads of each subject's runtime, by thread name: tokio turns a panic on
/// its blocking pool, where operations run, into an error answer, which the request target
/// must still report.
static POOL_PANICS: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());

impl Subject {
    /// The first panic on this subject's blocking pool since the last call.
    fn pool_panic(&self) -> Result<(), String> {
        let mut watched = POOL_PANICS.lock().unwrap_or_else(PoisonError::into_inner);
        let panics = watched.get_mut(&self.threads).map(std::mem::take);
        match panics.unwrap_or_default().into_iter().next() {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        let mut watched = POOL_PANICS.lock().unwrap_or_else(PoisonError::into_inner);
        watched.remove(&self.threads);
    }
}

/// Records panics on threads named in [`POOL_PANICS`], and hands the others to the hook that
/// was set before (so a caller's own hook must be set before the first subject).
fn watch_pool_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mut watched = POOL_PANICS.lock().unwrap_or_else(PoisonError::into_inner);
            match std::thread::current()
                .name()
                .and_then(|name| watched.get_mut(name))
            {
                Some(panics) => panics.push(panic_message(info.payload())),
                None => {
                    drop(watched);
                    previous(info);
                }
            }
        }));
    });
}

/// A subject whose store is in `dir` (writes acknowledged without fsync).
///
/// # Panics
/// When the store cannot be opened or the runtime not started.
pub fn subject(dir: &Path) -> Subject {
    let mut config = tidemark_core::StoreConfig::new(dir);
    config.durability = tidemark_core::Durability::Buffer;
    let engine = Engine::open(config).expect("open the fuzzing store");
    let store = engine.store.clone();
    let replication = ReplicationConfig {
        region: store.config().region.clone(),
        ..ReplicationConfig::default()
    };
    let node = AppState::new(NodeState {
        publishers: Arc::new(Publishers::new(store.clone(), None)),
        topic_template: String::new(),
        replicator: Replicator::new(&engine, replication),
        transfers: Transfers::new(store, engine.backups.clone(), None),
        engine,
        credentials: None,
        activity: Arc::default(),
        cluster: None,
    });
    static SUBJECTS: AtomicU64 = AtomicU64::new(0);
    let threads = format!("fuzz-request-{}", SUBJECTS.fetch_add(1, Ordering::Relaxed));
    watch_pool_panics();
    POOL_PANICS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(threads.clone(), Vec::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(&threads)
        .build()
        .expect("start the fuzzing runtime");
    Subject {
        node,
        runtime,
        threads,
    }
}

/// Runs `cases` generated inputs through `target` from `seed`; returns the inputs that
/// panicked, each with its message.
pub fn run(target: Target, subject: &Subject, cases: u64, seed: u64) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = target.seeds();
    let alphabet: Vec<char> = seeds.iter().flat_map(|s| s.chars()).collect();
    let mut failures = Vec::new();
    for _ in 0..cases {
        let input = mutate(&mut rng, &seeds, &alphabet);
        if let Err(message) = run_one(target, subject, &input) {
            failures.push((input, message));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_on_the_subjects_blocking_pool_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let subject = subject(dir.path());
        let joined = subject
            .runtime
            .block_on(async { tokio::task::spawn_blocking(|| panic!("on the pool")).await });
        assert!(joined.is_err());
        assert_eq!(subject.pool_panic(), Err("on the pool".to_string()));
        assert_eq!(subject.pool_panic(), Ok(()));
    }
}
