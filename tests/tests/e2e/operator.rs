//! The operator's commands against a running node: `tidemark tables` and
//! `tidemark stream tail`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use tidemark_tests::TestNode;

use crate::common::{create_stream_table, node_binary, s};

/// Starts `tidemark stream tail TABLE ARGS` and returns it with a channel of its lines, once
/// it says (on stderr) that it follows the stream.
fn tail(
    endpoint: &str,
    table: &str,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(node_binary())
        .args(["stream", "tail", table, "--endpoint", endpoint])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tail");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("following") {
                ready.take().map(|r| r.send(()));
            }
        }
    });
    started
        .recv_timeout(Duration::from_secs(60))
        .expect("the tail starts following the stream");
    (child, received)
}

/// The next `count` lines, waiting at most 20 s in all.
fn take(received: &std::sync::mpsc::Receiver<String>, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => out.push(line),
            Err(_) => panic!("only {} of {count} lines: {out:?}", out.len()),
        }
    }
    out
}

// The commands are child processes talking to this process's node while the test blocks on
// their output: the node needs workers of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_and_stream_tail_show_the_node() {
    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let client = node.client();
    create_stream_table(&client, "tailed", StreamViewType::NewImage).await;
    let put = async |key: &str| {
        client
            .put_item()
            .table_name("tailed")
            .item("p", s(key))
            .send()
            .await
            .unwrap();
    };
    for key in ["a", "b", "c"] {
        put(key).await;
    }

    let (mut from_now, now_lines) = tail(&endpoint, "tailed", &["--json"]);
    let (mut from_start, start_lines) = tail(&endpoint, "tailed", &["--from-start"]);
    put("x").await;
    put("y").await;
    let records: Vec<serde_json::Value> = take(&now_lines, 2)
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON record per line"))
        .collect();
    // Records of different items may sit in different shards, so only each shard's order
    // is fixed: compare the sets.
    let mut keys: Vec<&str> = records
        .iter()
        .map(|r| {
            r.pointer("/dynamodb/Keys/p/S")
                .and_then(|k| k.as_str())
                .unwrap()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["x", "y"], "only what came after the tail started");
    assert!(records.iter().all(|r| r["eventName"] == "INSERT"));
    let mut pretty = take(&start_lines, 5);
    pretty.sort_by_key(|line| line.split(' ').nth(2).map(str::to_string));
    for (line, key) in pretty.iter().zip(["a", "b", "c", "x", "y"]) {
        let keys = format!(r#"{{"p":{{"S":"{key}"}}}}"#);
        assert!(
            line.contains(" INSERT ") && line.contains(&keys),
            "{pretty:?}"
        );
    }
    from_now.kill().unwrap();
    from_start.kill().unwrap();

    let run = |args: &[&str]| {
        let output = Command::new(node_binary())
            .args(args)
            .args(["--endpoint", &endpoint])
            .output()
            .expect("run the command");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let listed = run(&["tables"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with("tailed "))
        .unwrap_or_else(|| panic!("{listed}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        columns,
        ["tailed", "ACTIVE", "5", columns[3], "NEW_IMAGE"],
        "{listed}"
    );
    let described: serde_json::Value =
        serde_json::from_str(&run(&["tables", "describe", "tailed"])).unwrap();
    assert_eq!(described["Table"]["ItemCount"], 5);
}

// `tidemark stream tail T | head` ends as `head` does: once the reader has gone, the next
// write ends the command quietly, with success, instead of a panic on the closed pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_whose_reader_goes_away_ends_quietly() {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

    let node = TestNode::start().await;
    let endpoint = node.endpoint();
    let client = node.client();
    create_stream_table(&client, "piped", StreamViewType::NewImage).await;
    // Well over a pipe's 64 KB of records, so the tail writes after the reader has gone.
    let padding = "x".repeat(200);
    for batch in 0..40 {
        let writes = (0..25)
            .map(|i| {
                let item = PutRequest::builder()
                    .item("p", s(&format!("k{batch}-{i}")))
                    .item("pad", s(&padding))
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(item).build()
            })
            .collect();
        client
            .batch_write_item()
            .request_items("piped", writes)
            .send()
            .await
            .unwrap();
    }
    let mut child = Command::new(node_binary())
        .args([
            "stream",
            "tail",
            "piped",
            "--from-start",
            "--endpoint",
            &endpoint,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tail");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first record");
    assert!(first.contains(" INSERT "), "{first}");
    drop(stdout);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the tail's state") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tail still runs a minute after its reader went"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
