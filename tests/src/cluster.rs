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
    settings: ClusterSettings,
    _dir: tempfile::TempDir,
}

/// How a cluster's nodes run, beyond their region and peers.
#[derive(Debug, Clone, Default)]
pub struct ClusterSettings {
    /// Arguments every node gets.
    pub shared: Vec<String>,
    /// Arguments only one region's node gets, by region index.
    pub per_region: Vec<Vec<String>>,
    /// The PEM certificate of the CA that signed every node's `--tls-cert`: the nodes serve
    /// HTTPS, reach their peers at `https://` URLs, and the cluster's clients trust it.
    pub https_ca: Option<String>,
    /// Environment variables only one region's node starts with (`FAILPOINTS`, ...), by region
    /// index.
    pub env: Vec<Vec<(String, String)>>,
}

#[derive(Debug)]
struct RegionNode {
    name: String,
    dir: PathBuf,
    node: Option<ChildNode>,
    addr: SocketAddr,
    /// Environment variables its node starts with.
    env: Vec<(String, String)>,
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
        let settings = ClusterSettings {
            shared: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .collect(),
            ..ClusterSettings::default()
        };
        Cluster::start_with(binary, regions, settings).await
    }

    /// Starts one node per region (`binary serve --region R --peer ...` plus the arguments
    /// `settings` gives it), each reaching every other through a proxy.
    ///
    /// # Panics
    /// When a node does not start.
    pub async fn start_with(binary: &Path, regions: &[&str], settings: ClusterSettings) -> Cluster {
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
                .enumerate()
                .map(|(i, name)| RegionNode {
                    name: name.to_string(),
                    dir: dir.path().join(name),
                    node: None,
                    addr: nowhere,
                    env: settings.env.get(i).cloned().unwrap_or_default(),
                })
                .collect(),
            links,
            settings,
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

    /// `https` when the nodes serve HTTPS, else `http`.
    fn scheme(&self) -> &'static str {
        match self.settings.https_ca {
            Some(_) => "https",
            None => "http",
        }
    }

    /// Region `i`'s endpoint (its node's current address).
    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "{}://{}",
            self.scheme(),
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

    /// Sets the environment variables region `i`'s node starts with from its next (re)start
    /// on (`TIDEMARK_TEST_CLOCK_SHIFT_MILLIS`, ...), replacing those set before.
    pub fn set_env(&mut self, i: usize, env: &[(&str, &str)]) {
        if let Some(region) = self.regions.get_mut(i) {
            region.env = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
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
                args.push(format!(
                    "{}={}://{}",
                    self.region(to),
                    self.scheme(),
                    self.link(i, to).addr()
                ));
            }
        }
        args.extend(self.settings.shared.iter().cloned());
        if let Some(own) = self.settings.per_region.get(i) {
            args.extend(own.iter().cloned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .regions
            .get(i)
            .map(|r| {
                r.env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            })
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
        match &self.settings.https_ca {
            Some(ca) => https_client(&self.endpoint(i), self.region(i), timeout, ca),
            None => client_with_timeout(&self.endpoint(i), self.region(i), timeout),
        }
    }
}

/// [`client_with_timeout`] over HTTPS, trusting only the CA certificate `ca_pem`.
///
/// # Panics
/// When `ca_pem` is not a PEM certificate.
pub fn https_client(
    endpoint: &str,
    region: &str,
    timeout: Duration,
    ca_pem: &str,
) -> aws_sdk_dynamodb::Client {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_pem_certificate(ca_pem.as_bytes().to_vec());
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .expect("a trust store of one certificate"),
        )
        .build_https();
    let plain = client_with_timeout(endpoint, region, timeout);
    let config = plain.config().to_builder().http_client(http_client).build();
    aws_sdk_dynamodb::Client::from_conf(config)
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
