//! Several regions, each a node in its own child process, every directed link between two of
//! them through its own [`FaultProxy`], so a test can cut and heal links, and kill and restart
//! nodes, while clients write in every region.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

use crate::ChildNode;
use crate::proxy::FaultProxy;

/// A group of regional nodes linked through fault proxies.
#[derive(Debug)]
pub struct Cluster {
    binary: PathBuf,
    regions: Vec<RegionNode>,
    /// `links[from][to]`: the proxy `from` reaches `to` through (`None` on the diagonal).
    links: Vec<Vec<Option<FaultProxy>>>,
    extra: Vec<String>,
    /// Per region, environment variables its node starts with (`FAILPOINTS`, ...).
    env: Vec<Vec<(String, String)>>,
    _dir: tempfile::TempDir,
}

#[derive(Debug)]
struct RegionNode {
    name: String,
    dir: PathBuf,
    node: Option<ChildNode>,
    addr: SocketAddr,
}

impl Cluster {
    /// Starts one node per region (`binary serve --region R --peer ...` plus `extra`), each
    /// reaching every other through a proxy.
    ///
    /// # Panics
    /// When a node does not start.
    pub async fn start(binary: &Path, regions: &[&str], extra: &[&str]) -> Cluster {
        Cluster::start_with_env(binary, regions, extra, &[]).await
    }

    /// [`Cluster::start`], region `i`'s node with the environment variables `env[i]` (every
    /// time it starts; regions past the end of `env` get none).
    ///
    /// # Panics
    /// When a node does not start.
    pub async fn start_with_env(
        binary: &Path,
        regions: &[&str],
        extra: &[&str],
        env: &[&[(&str, &str)]],
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("temporary folder");
        let nowhere: SocketAddr = "127.0.0.1:9".parse().expect("an address");
        let mut links = Vec::new();
        for from in 0..regions.len() {
            let mut row = Vec::new();
            for to in 0..regions.len() {
                row.push(match from == to {
                    true => None,
                    false => Some(FaultProxy::start(nowhere).await),
                });
            }
            links.push(row);
        }
        let mut cluster = Cluster {
            binary: binary.to_path_buf(),
            regions: regions
                .iter()
                .map(|name| RegionNode {
                    name: name.to_string(),
                    dir: dir.path().join(name),
                    node: None,
                    addr: nowhere,
                })
                .collect(),
            links,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: (0..regions.len())
                .map(|i| {
                    env.get(i)
                        .map(|vars| {
                            vars.iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect(),
            _dir: dir,
        };
        for i in 0..regions.len() {
            cluster.restart(i).await;
        }
        cluster
    }

    /// How many regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Region `i`'s name.
    pub fn region(&self, i: usize) -> &str {
        self.regions.get(i).map_or("", |r| r.name.as_str())
    }

    /// Region `i`'s data folder.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.regions
            .get(i)
            .map(|r| r.dir.clone())
            .unwrap_or_default()
    }

    /// Region `i`'s endpoint (its node's current address).
    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "http://{}",
            self.regions
                .get(i)
                .map_or(String::new(), |r| r.addr.to_string())
        )
    }

    /// Region `i`'s process id, while its node runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.regions.get(i)?.node.as_ref()?.pid()
    }

    /// True while region `i`'s node runs.
    pub fn is_up(&self, i: usize) -> bool {
        self.regions.get(i).is_some_and(|r| r.node.is_some())
    }

    /// The proxy on the link from region `from` to region `to`.
    ///
    /// # Panics
    /// For `from == to` or an unknown region.
    pub fn link(&self, from: usize, to: usize) -> &FaultProxy {
        self.links
            .get(from)
            .and_then(|row| row.get(to))
            .and_then(Option::as_ref)
            .expect("a link between two different regions")
    }

    /// Every directed link, as `(from, to)`.
    pub fn link_pairs(&self) -> Vec<(usize, usize)> {
        let n = self.regions.len();
        (0..n)
            .flat_map(|from| {
                (0..n)
                    .filter(move |to| *to != from)
                    .map(move |to| (from, to))
            })
            .collect()
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for (from, to) in self.link_pairs() {
            self.link(from, to).heal();
        }
    }

    /// Kills region `i`'s node with SIGKILL.
    pub async fn kill(&mut self, i: usize) {
        if let Some(node) = self.regions.get_mut(i).and_then(|r| r.node.take()) {
            node.kill().await;
        }
    }

    /// Stops region `i`'s node with SIGTERM (a clean shutdown).
    ///
    /// # Panics
    /// When it does not stop cleanly.
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.regions.get_mut(i).and_then(|r| r.node.take()) {
            let status = node.terminate().await;
            assert!(status.success(), "region {i} stopped with {status}");
        }
    }

    /// Starts region `i`'s node again (a no-op while it runs) on its data folder, and points
    /// every link into it at its new address.
    ///
    /// # Panics
    /// When the node does not start.
    pub async fn restart(&mut self, i: usize) {
        if self.is_up(i) {
            return;
        }
        let mut args = vec!["--region".to_string(), self.region(i).to_string()];
        for to in 0..self.regions.len() {
            if to != i {
                args.push("--peer".into());
                args.push(format!("{}={}", self.region(to), self.link(i, to).url()));
            }
        }
        args.extend(self.extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .get(i)
            .map(|vars| vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default();
        let node = ChildNode::start_with_env(&self.binary, &self.data_dir(i), &args, &env).await;
        let addr = node.addr();
        for from in 0..self.regions.len() {
            if from != i {
                self.link(from, i).set_upstream(addr);
            }
        }
        if let Some(region) = self.regions.get_mut(i) {
            region.addr = addr;
            region.node = Some(node);
        }
    }

    /// A DynamoDB client for region `i` that gives up on a request after `timeout` and never
    /// retries (a retry would hide an error from the test).
    pub fn client(&self, i: usize, timeout: Duration) -> aws_sdk_dynamodb::Client {
        client_with_timeout(&self.endpoint(i), self.region(i), timeout)
    }
}

/// A DynamoDB client for `endpoint` in `region` with an operation timeout and no retries.
pub fn client_with_timeout(
    endpoint: &str,
    region: &str,
    timeout: Duration,
) -> aws_sdk_dynamodb::Client {
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_timeout(timeout)
        .connect_timeout(timeout)
        .build();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            "tidemark", "tidemark", None, None, "tests",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .timeout_config(timeouts)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A `ReplicaUpdates` element adding a replica in `region`.
pub fn replica_create(region: &str) -> aws_sdk_dynamodb::types::ReplicationGroupUpdate {
    use aws_sdk_dynamodb::types::{CreateReplicationGroupMemberAction, ReplicationGroupUpdate};
    ReplicationGroupUpdate::builder()
        .create(
            CreateReplicationGroupMemberAction::builder()
                .region_name(region)
                .build()
                .expect("a region name is all it needs"),
        )
        .build()
}

/// A `ReplicaUpdates` element updating the replica in `region`.
pub fn replica_update(region: &str) -> aws_sdk_dynamodb::types::ReplicationGroupUpdate {
    use aws_sdk_dynamodb::types::{ReplicationGroupUpdate, UpdateReplicationGroupMemberAction};
    ReplicationGroupUpdate::builder()
        .update(
            UpdateReplicationGroupMemberAction::builder()
                .region_name(region)
                .build()
                .expect("a region name is all it needs"),
        )
        .build()
}

/// A `ReplicaUpdates` element removing the replica in `region`.
pub fn replica_delete(region: &str) -> aws_sdk_dynamodb::types::ReplicationGroupUpdate {
    use aws_sdk_dynamodb::types::{DeleteReplicationGroupMemberAction, ReplicationGroupUpdate};
    ReplicationGroupUpdate::builder()
        .delete(
            DeleteReplicationGroupMemberAction::builder()
                .region_name(region)
                .build()
                .expect("a region name is all it needs"),
        )
        .build()
}
