//! tidemark-tests: the end-to-end test harness and benchmark tools.
//!
//! [`TestNode`] starts a whole node in-process on `127.0.0.1:0` in a temporary folder and
//! hands out real AWS SDK clients for it; [`ChildNode`] runs the node as a separate process
//! (for crash tests); [`raw_request`] speaks the wire protocol directly for protocol tests;
//! [`kafka::Broker`] runs a real Kafka-protocol broker (tansu) for the publishing tests;
//! [`proxy::FaultProxy`] sits on a link between two nodes and cuts, heals or delays it, and
//! [`cluster::Cluster`] runs one node per region as child processes, linked through proxies;
//! [`load`] holds the load generators of the benchmark tools.

pub mod cluster;
pub mod fuzz;
pub mod kafka;
pub mod load;
pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use tidemark_cli::{Node, NodeConfig};
use tidemark_core::{Clock, Durability, StoreConfig, SystemClock};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A node running in this process, in its own temporary folder.
#[derive(Debug)]
pub struct TestNode {
    node: Option<Node>,
    config: NodeConfig,
    clock: Arc<dyn Clock>,
    dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts a node with default settings (`sync` durability).
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start() -> TestNode {
        TestNode::start_with(|_| {}).await
    }

    /// Starts a node after `configure` adjusted its store settings.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start_with(configure: impl FnOnce(&mut StoreConfig)) -> TestNode {
        TestNode::start_configured(|node| configure(&mut node.store), Arc::new(SystemClock)).await
    }

    /// Starts a node that publishes to the Kafka cluster at `brokers`, on the system clock.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start_with_kafka(brokers: String) -> TestNode {
        let kafka = tidemark_kafka::KafkaSettings::new(brokers);
        TestNode::start_configured(
            move |config| config.kafka = Some(kafka),
            Arc::new(tidemark_core::SystemClock),
        )
        .await
    }

    /// Starts a node with the given clock after `configure` adjusted its settings; restarts
    /// keep both.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start_configured(
        configure: impl FnOnce(&mut NodeConfig),
        clock: Arc<dyn Clock>,
    ) -> TestNode {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut store = StoreConfig::new(dir.path().join("data"));
        store.durability = Durability::Sync;
        let mut config = NodeConfig::new("127.0.0.1:0".parse().expect("address"), store);
        configure(&mut config);
        let node = Node::start_with_clock(config.clone(), clock.clone())
            .await
            .expect("node starts");
        TestNode {
            node: Some(node),
            config,
            clock,
            dir,
        }
    }

    /// The node.
    ///
    /// # Panics
    /// After [`TestNode::stop`].
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node running")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.node().local_addr())
    }

    /// A DynamoDB client of the AWS SDK for Rust pointed at this node.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        client_for(&self.endpoint())
    }

    /// A DynamoDB Streams client of the AWS SDK for Rust pointed at this node.
    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        streams_client_for(&self.endpoint())
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the node cleanly (drain, persist), keeping its folder.
    ///
    /// # Panics
    /// When the node does not stop cleanly.
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await.expect("clean stop");
        }
    }

    /// Stops the node and starts a new one on the same data folder.
    ///
    /// # Panics
    /// When either step fails.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.node = Some(
            Node::start_with_clock(self.config.clone(), self.clock.clone())
                .await
                .expect("node restarts"),
        );
    }
}

/// The access key (and its secret) the tests' clients sign with: nodes with `--credentials`
/// in tests accept it.
pub const TEST_KEY: (&str, &str) = ("tidemark", "tidemark");

/// An AWS SDK DynamoDB Streams client for `endpoint`, with the test key and no retries.
pub fn streams_client_for(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            TEST_KEY.0, TEST_KEY.1, None, None, "tests",
        ))
        .retry_config(aws_sdk_dynamodbstreams::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// An AWS SDK DynamoDB client for `endpoint`, with the test key and no retries (a retry
/// would hide a server error from the test).
pub fn client_for(endpoint: &str) -> aws_sdk_dynamodb::Client {
    client_with_key(endpoint, TEST_KEY.0, TEST_KEY.1)
}

/// [`client_for`], signing with `key` and `secret`.
pub fn client_with_key(endpoint: &str, key: &str, secret: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            key.to_string(),
            secret.to_string(),
            None,
            None,
            "tests",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A raw protocol answer.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The exception name after `#` in `__type`, for errors.
    pub fn error_name(&self) -> String {
        let json = self.json();
        let full = json.get("__type").and_then(|t| t.as_str()).unwrap_or("");
        full.rsplit('#').next().unwrap_or("").to_string()
    }
}

/// Sends one request with `X-Amz-Target: <target>` and the given body.
///
/// # Panics
/// When the HTTP exchange fails.
pub async fn raw_request(
    endpoint: &str,
    target: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> RawResponse {
    let client = reqwest::Client::new();
    let mut request = client
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .body(body);
    if let Some(target) = target {
        request = request.header("x-amz-target", target);
    }
    let response = request.send().await.expect("HTTP exchange");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    RawResponse {
        status,
        headers,
        body,
    }
}

/// A node running as a child process (the `tidemark-node` binary), for crash tests.
#[derive(Debug)]
pub struct ChildNode {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl ChildNode {
    /// Starts `binary serve --port 0 --data-dir dir` with extra args, and waits until it says
    /// where it listens.
    ///
    /// # Panics
    /// When the process does not start or never reports its address.
    pub async fn start(binary: &Path, dir: &Path, extra: &[&str]) -> ChildNode {
        ChildNode::start_with_env(binary, dir, extra, &[]).await
    }

    /// [`ChildNode::start`] with extra environment variables (`FAILPOINTS`, ...).
    ///
    /// # Panics
    /// When the process does not start or never reports its address.
    pub async fn start_with_env(
        binary: &Path,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ChildNode {
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .args(["--port", "0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env(
                "TIDEMARK_LOG",
                std::env::var("TIDEMARK_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node process starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                // `http://` or `https://` (a node serving TLS).
                let serving = line.split("listening on ").nth(1).and_then(|rest| {
                    rest.strip_prefix("http://")
                        .or_else(|| rest.strip_prefix("https://"))
                });
                if let Some(rest) = serving {
                    let addr = rest.split_whitespace().next().unwrap_or("");
                    return addr.parse::<SocketAddr>().expect("address in log line");
                }
            }
            panic!("node exited before listening");
        })
        .await
        .expect("node reports its address within 30 s");
        // Keep draining stderr so the child never blocks on a full pipe; with
        // TIDEMARK_TEST_LOGS set, into `<that folder>/<data folder name>.log`.
        let mut log = std::env::var_os("TIDEMARK_TEST_LOGS").and_then(|logs| {
            let name = dir.file_name()?.to_string_lossy().to_string();
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(&logs).join(format!("{name}.log")))
                .ok()
        });
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(file) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        ChildNode { child, addr }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process with SIGKILL and waits for it to die.
    ///
    /// # Panics
    /// When the kill fails.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// Waits for the process to exit by itself (at most `timeout`) and returns its status.
    ///
    /// # Panics
    /// When it is still running after `timeout`.
    pub async fn exited(mut self, timeout: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("the node exits by itself")
            .expect("wait")
    }

    /// Sends SIGTERM and returns the exit status.
    ///
    /// # Panics
    /// When the signal cannot be sent or the wait fails.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits within 30 s")
            .expect("wait")
    }
}

/// CPU seconds used so far by the process `pid` (user + system), from /proc.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
