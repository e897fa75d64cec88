//! Who this node replicates with: its region, its peers (`REGION=URL`) and the secret every
//! peer link is authenticated with.

use std::net::IpAddr;

use subtle::ConstantTimeEq;

/// Header carrying the shared secret on every request between peers.
pub const SECRET_HEADER: &str = "x-tidemark-peer-secret";
/// Header naming the region a peer request comes from.
pub const REGION_HEADER: &str = "x-tidemark-region";

/// One peer region and where it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's region name (`us-east-1`).
    pub region: String,
    /// Its base URL (`http://10.0.0.2:8000`): all traffic to the peer goes there.
    pub url: String,
}

impl Peer {
    /// Parses `REGION=URL`.
    ///
    /// # Errors
    /// The text is not `REGION=URL` with an http(s) URL.
    pub fn parse(text: &str) -> Result<Peer, PeerParseError> {
        let (region, url) = text
            .split_once('=')
            .ok_or_else(|| PeerParseError::NotRegionUrl(text.to_string()))?;
        let (region, url) = (region.trim(), url.trim().trim_end_matches('/'));
        if region.is_empty() {
            return Err(PeerParseError::NoRegion(text.to_string()));
        }
        let parsed = url::Url::parse(url).map_err(|reason| PeerParseError::NotUrl {
            url: url.to_string(),
            reason,
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(PeerParseError::NotHttp(url.to_string()));
        }
        Ok(Peer {
            region: region.to_string(),
            url: url.to_string(),
        })
    }

    /// True when the peer's host is this machine (a loopback address or `localhost`).
    pub fn is_loopback(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.url) else {
            return false;
        };
        match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
    }
}

/// Why a `--peer` value is not a peer: clap refuses the argument with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerParseError {
    /// No `=` between a region and a URL.
    #[error("'{0}' is not REGION=URL")]
    NotRegionUrl(String),
    /// Nothing before the `=`.
    #[error("'{0}' names no region")]
    NoRegion(String),
    /// What follows the `=` is not a URL.
    #[error("'{url}' is not a URL: {reason}")]
    NotUrl {
        /// The text given as the URL.
        url: String,
        /// Why it does not parse.
        reason: url::ParseError,
    },
    /// A URL, but not http(s) or without a host.
    #[error("'{0}' is not an http(s) URL with a host")]
    NotHttp(String),
}

/// Why replication settings do not make a safe group ([`ReplicationConfig::check`]): the node
/// refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A peer is this node's own region.
    #[error("peer {0} is this node's own region; a region has one node")]
    OwnRegion(String),
    /// Two peers serve the same region.
    #[error("peer region {0} is given twice")]
    PeerTwice(String),
    /// The Kafka transport without a cluster.
    #[error("replication through Kafka needs KAFKA_BROKERS")]
    NoBrokers,
    /// A secret given, but empty.
    #[error("the peer secret is empty")]
    EmptySecret,
    /// A peer reached over the network, and no secret to authenticate its link.
    #[error(
        "peer {} at {} is reached over the network, and no --peer-secret \
         (TIDEMARK_PEER_SECRET) is set: anyone who can reach this node could write \
         to it as a peer. Set the same secret on every node of the group",
        .0.region,
        .0.url
    )]
    RemotePeerWithoutSecret(Peer),
}

/// How changes travel between regions (membership and seeding always go over HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Transport {
    /// Each node sends its changes to every peer over HTTP.
    #[default]
    Direct,
    /// Each node publishes its own changes of every global table to a topic per table
    /// (`tidemark.replication.<region>.<table>`) on this cluster and consumes the other
    /// regions' topics.
    Kafka {
        /// The cluster, its clients' options and how topics are created there.
        cluster: tidemark_kafka::KafkaSettings,
        /// How long the replication topics the node creates keep a message
        /// (`--replication-topic-retention`): a region away longer must be seeded again.
        topic_retention: std::time::Duration,
    },
}

/// This node's replication settings.
#[derive(Debug, Clone, Default)]
pub struct ReplicationConfig {
    /// This node's region.
    pub region: String,
    /// The other regions.
    pub peers: Vec<Peer>,
    /// The secret shared by every node of the group.
    pub secret: Option<String>,
    /// How changes travel.
    pub transport: Transport,
}

impl ReplicationConfig {
    /// Checks the settings make a safe group: no peer twice, not this region as a peer, and a
    /// secret whenever a peer is reached over the network.
    ///
    /// # Errors
    /// Why the node must not start with these settings.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for peer in &self.peers {
            if peer.region == self.region {
                return Err(ConfigError::OwnRegion(peer.region.clone()));
            }
            if !seen.insert(&peer.region) {
                return Err(ConfigError::PeerTwice(peer.region.clone()));
            }
        }
        if let Transport::Kafka { cluster, .. } = &self.transport
            && cluster.brokers.trim().is_empty()
        {
            return Err(ConfigError::NoBrokers);
        }
        if self.secret.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::EmptySecret);
        }
        if self.secret.is_none()
            && let Some(remote) = self.peers.iter().find(|p| !p.is_loopback())
        {
            return Err(ConfigError::RemotePeerWithoutSecret(remote.clone()));
        }
        Ok(())
    }

    /// The peer serving `region`.
    pub fn peer(&self, region: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.region == region)
    }

    /// True when a request carrying `presented` as its secret may act as a peer. Without a
    /// configured secret (loopback peers only), any request may.
    pub fn admits(&self, presented: Option<&str>) -> bool {
        match (&self.secret, presented) {
            (None, _) => true,
            (Some(secret), Some(presented)) => {
                bool::from(secret.as_bytes().ct_eq(presented.as_bytes()))
            }
            (Some(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(peers: &[&str], secret: Option<&str>) -> ReplicationConfig {
        ReplicationConfig {
            region: "eu-west-1".into(),
            peers: peers
                .iter()
                .map(|p| Peer::parse(p).expect("a peer"))
                .collect(),
            secret: secret.map(String::from),
            transport: Transport::Direct,
        }
    }

    #[test]
    fn peers_parse_as_region_and_url() {
        let peer = Peer::parse("us-east-1=http://127.0.0.1:8001/").expect("parses");
        assert_eq!(peer.region, "us-east-1");
        assert_eq!(peer.url, "http://127.0.0.1:8001");
        assert!(peer.is_loopback());
        assert!(
            !Peer::parse("ap=http://10.1.2.3:8000")
                .expect("parses")
                .is_loopback()
        );
        assert_eq!(
            Peer::parse("http://127.0.0.1:8001"),
            Err(PeerParseError::NotRegionUrl("http://127.0.0.1:8001".into()))
        );
        assert_eq!(
            Peer::parse("us=ftp://x"),
            Err(PeerParseError::NotHttp("ftp://x".into()))
        );
        assert_eq!(
            Peer::parse("=http://x"),
            Err(PeerParseError::NoRegion("=http://x".into()))
        );
        let not_url = Peer::parse("us=not a url").expect_err("not a URL");
        assert_eq!(
            not_url.to_string(),
            "'not a url' is not a URL: relative URL without a base"
        );
    }

    #[test]
    fn a_group_over_the_network_needs_a_secret() {
        assert!(config(&["us=http://localhost:1"], None).check().is_ok());
        let refused = config(&["us=http://10.0.0.1:1"], None).check();
        assert!(matches!(
            &refused,
            Err(ConfigError::RemotePeerWithoutSecret(peer)) if peer.region == "us"
        ));
        assert!(refused.is_err_and(|e| e.to_string().starts_with(
            "peer us at http://10.0.0.1:1 is reached over the network, and no --peer-secret \
             (TIDEMARK_PEER_SECRET) is set"
        )));
        assert!(config(&["us=http://10.0.0.1:1"], Some("s")).check().is_ok());
        assert_eq!(
            config(&["eu-west-1=http://localhost:1"], None).check(),
            Err(ConfigError::OwnRegion("eu-west-1".into()))
        );
        assert_eq!(
            config(&["us=http://localhost:1", "us=http://localhost:2"], None).check(),
            Err(ConfigError::PeerTwice("us".into()))
        );
        assert_eq!(
            config(&["us=http://localhost:1"], Some("")).check(),
            Err(ConfigError::EmptySecret)
        );
    }

    #[test]
    fn the_secret_must_match_exactly() {
        let config = config(&["us=http://10.0.0.1:1"], Some("right"));
        assert!(config.admits(Some("right")));
        assert!(!config.admits(Some("wrong")));
        assert!(!config.admits(Some("righ")));
        assert!(!config.admits(None));
    }
}
