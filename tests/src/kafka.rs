//! A real Kafka-protocol broker for tests: tansu 0.6.0 with its sqlite storage (topics survive
//! a broker restart), started on a free loopback port in a temporary folder, or the cluster
//! `KAFKA_BROKERS` names.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Where `scripts/test.sh` installs tansu.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("TIDEMARK_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/tidemark/tools")
        });
    tools.join("tansu/bin/tansu")
}

/// A broker for one test.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    external: Option<String>,
}

impl Broker {
    /// Starts tansu (or uses `KAFKA_BROKERS`).
    ///
    /// # Panics
    /// When tansu is not installed (the message says how to install it) or does not start.
    pub async fn start() -> Broker {
        let dir = tempfile::tempdir().expect("temporary folder");
        if let Ok(brokers) = std::env::var("KAFKA_BROKERS") {
            return Broker {
                child: None,
                port: 0,
                dir,
                external: Some(brokers),
            };
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Broker {
            child: None,
            port,
            dir,
            external: None,
        };
        broker.launch().await;
        broker
    }

    async fn launch(&mut self) {
        let binary = tansu_binary();
        assert!(
            binary.exists(),
            "the Kafka tests need tansu 0.6.0 at {}: run scripts/test.sh (it installs it), or \
             `cargo install tansu --version 0.6.0 --features dynostore,libsql --locked --root \
             ~/.cache/tidemark/tools/tansu`, or point KAFKA_BROKERS at a Kafka cluster",
            binary.display()
        );
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // tansu resolves the sqlite path against its working folder.
        let storage = "sqlite://tansu.db";
        let child = Command::new(&binary)
            .current_dir(self.dir.path())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", storage])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(self.log())
            .kill_on_drop(true)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        let ready = crate::wait_until(Duration::from_secs(20), async || {
            tokio::net::TcpStream::connect(&address).await.is_ok()
        })
        .await;
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        assert!(
            ready && exited.is_none(),
            "tansu did not start on {address} (exit: {exited:?}): {}",
            std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
        );
    }

    /// tansu's stderr, appended to `tansu.log` in its folder across restarts.
    fn log(&self) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }

    /// `bootstrap.servers` of the broker.
    pub fn brokers(&self) -> String {
        match &self.external {
            Some(brokers) => brokers.clone(),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// The broker's process id, when this test started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// True when the broker is tansu started by this test (so it can be stopped).
    pub fn is_local(&self) -> bool {
        self.external.is_none()
    }

    /// Stops the broker (its data stays).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the broker again on the same port and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}
