//! Requests to peers over HTTP or HTTPS with the region and secret headers (change batches in
//! their binary form, everything else JSON; answers JSON), one connection pool for every peer,
//! short timeouts so a peer that went away is noticed quickly. Every answer also measures the
//! peer's clock against this node's (`crate::clocks`).
//!
//! `https://` peers are checked against the system's roots and `--peer-ca` (rustls with the
//! same aws-lc provider as the node's own HTTPS listener, no OpenSSL); a certificate that
//! does not check out fails the request with rustls' reason, which the link state shows.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tidemark_core::Clock;

use crate::clocks::{ANSWERED_AT_HEADER, ClockOffset, ClockOffsets, RECEIVED_AT_HEADER};
use crate::peers::{Peer, REGION_HEADER, ReplicationConfig, SECRET_HEADER};
use crate::protocol::{BatchAnswer, CHANGES_CONTENT_TYPE, CHANGES_PATH, ChangeBatch, PeerRefusal};

/// Why a request to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached, or did not answer in time.
    #[error("peer {region} is unreachable: {message}")]
    Unreachable {
        /// The peer.
        region: String,
        /// What went wrong.
        message: String,
    },
    /// The peer answered with a refusal.
    #[error("peer {region} refused: {}: {}", refusal.error, refusal.message)]
    Refused {
        /// The peer.
        region: String,
        /// Its refusal.
        refusal: PeerRefusal,
    },
}

/// The HTTP client every request to a peer goes through.
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    region: String,
    /// The secret of each peer's link (or the group's, under every peer), by region.
    secrets: Arc<std::collections::BTreeMap<String, String>>,
    /// This node's wall clock, which peers' clocks are measured against.
    clock: Arc<dyn Clock>,
    /// Where each answer's measurement goes.
    offsets: Arc<ClockOffsets>,
}

impl PeerClient {
    /// A client sending as `config`'s region to its peers, with their links' secrets, trusting
    /// the system's roots and `config`'s peer CA for `https://` peers, and measuring peers'
    /// clocks against `clock`.
    ///
    /// # Panics
    /// When the HTTP client cannot be built: the TLS settings are fixed, and the peer CA's
    /// certificates were checked when it was read ([`crate::peers::PeerCa::load`]).
    pub fn new(config: &ReplicationConfig, clock: Arc<dyn Clock>) -> PeerClient {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(config))
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client with a rustls configuration builds");
        let secrets = config
            .peers
            .iter()
            .filter_map(|peer| {
                let secret = config.secret_for(&peer.region)?;
                Some((peer.region.clone(), secret.to_string()))
            })
            .collect();
        PeerClient {
            http,
            region: config.region.clone(),
            secrets: Arc::new(secrets),
            clock,
            offsets: Arc::default(),
        }
    }

    /// The latest clock offset measured of every peer.
    pub fn offsets(&self) -> &Arc<ClockOffsets> {
        &self.offsets
    }

    /// Posts `body` as JSON to `path` on `peer` and decodes its answer.
    ///
    /// # Errors
    /// [`PeerError`].
    pub async fn post<B: Serialize, A: DeserializeOwned>(
        &self,
        peer: &Peer,
        path: &str,
        body: &B,
    ) -> Result<A, PeerError> {
        let body = serde_json::to_vec(body).map_err(|e| PeerError::Unreachable {
            region: peer.region.clone(),
            message: format!("a message that does not serialize: {e}"),
        })?;
        self.send(peer, path, "application/json", body).await
    }

    /// Posts a batch of changes to `peer`, in its binary form.
    ///
    /// # Errors
    /// [`PeerError`].
    pub async fn post_changes(
        &self,
        peer: &Peer,
        batch: &ChangeBatch,
    ) -> Result<BatchAnswer, PeerError> {
        self.send(peer, CHANGES_PATH, CHANGES_CONTENT_TYPE, batch.encode())
            .await
    }

    /// Posts cells of any region's (a seeding page, `path` [`SEED_PATH`], or an anti-entropy
    /// repair, [`REPAIR_PATH`]) to `peer`, in the binary form of a batch.
    ///
    /// # Errors
    /// [`PeerError`].
    pub async fn post_cells(
        &self,
        peer: &Peer,
        path: &str,
        cells: &ChangeBatch,
    ) -> Result<BatchAnswer, PeerError> {
        self.send(peer, path, CHANGES_CONTENT_TYPE, cells.encode())
            .await
    }

    async fn send<A: DeserializeOwned>(
        &self,
        peer: &Peer,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<A, PeerError> {
        let unreachable = |message: String| PeerError::Unreachable {
            region: peer.region.clone(),
            message,
        };
        let mut request = self
            .http
            .post(format!("{}{path}", peer.url))
            .header(REGION_HEADER, &self.region)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(secret) = self.secrets.get(&peer.region) {
            request = request.header(SECRET_HEADER, secret);
        }
        let sent = self.clock.now_millis();
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(with_causes(&e)))?;
        let back = self.clock.now_millis();
        let peer_time = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(received), Some(answered)) =
            (peer_time(RECEIVED_AT_HEADER), peer_time(ANSWERED_AT_HEADER))
        {
            let offset = ClockOffset::measure(sent, received, answered, back);
            self.offsets.record(&peer.region, offset);
        }
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unreachable(with_causes(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| unreachable(format!("an answer that does not parse: {e}")));
        }
        match serde_json::from_slice::<PeerRefusal>(&bytes) {
            Ok(refusal) => Err(PeerError::Refused {
                region: peer.region.clone(),
                refusal,
            }),
            Err(_) => Err(unreachable(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }
}

/// The TLS settings of peer requests: TLS 1.2 and 1.3 with aws-lc, trusting the system's roots
/// and the peer CA.
fn tls_config(config: &ReplicationConfig) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::debug!(%error, "a system root certificate cannot be read");
    }
    roots.add_parsable_certificates(system.certs);
    if let Some(ca) = &config.peer_ca {
        roots.add_parsable_certificates(ca.certificates.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc offers the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An error with every cause under it: reqwest says only "error sending request", the reason
/// (a refused connection, an untrusted certificate) is in its sources.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}
