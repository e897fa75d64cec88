//! Who this node replicates with: its region, its peers (`REGION=URL`), the secrets its peer
//! links are authenticated with, and the certificate authority it trusts for `https://` peers.
//!
//! IMPORTANT: two ways to authenticate links. One group secret (`--peer-secret`) proves only
//! that a request comes from some member of the group: any member can name any region. A
//! secret per link (`--peer-link-secret REGION=SECRET`, the same value on both ends of that
//! link and nowhere else) proves which region sends: a node holding region A's secrets knows
//! only the secrets of A's own links, so it cannot pass as B to anyone but A itself.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

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
    /// Both kinds of secret: a group secret would let any member pass as any region, so the
    /// per-link secrets would prove nothing.
    #[error(
        "--peer-secret and --peer-link-secret are both set; give every link its own secret \
         (--peer-link-secret REGION=SECRET for each peer) or one group secret, not both"
    )]
    SecretKindsMixed,
    /// A link secret for a region that is not a peer.
    #[error("--peer-link-secret names region {0}, which is not a --peer")]
    LinkSecretForNoPeer(String),
    /// Link secrets given, and a peer without one.
    #[error("peer {0} has no --peer-link-secret: with secrets per link, every peer needs its own")]
    PeerWithoutLinkSecret(String),
    /// Two link secrets for one region.
    #[error("--peer-link-secret for region {0} is given twice")]
    LinkSecretTwice(String),
    /// A peer reached over the network, and no secret to authenticate its link.
    #[error(
        "peer {} at {} is reached over the network, and no --peer-secret \
         (TIDEMARK_PEER_SECRET) is set: anyone who can reach this node could write \
         to it as a peer. Give every link its own secret (--peer-link-secret REGION=SECRET \
         on both of its ends), or set the same secret on every node of the group",
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
    /// The secret shared by every node of the group (it does not tell regions apart).
    pub secret: Option<String>,
    /// The secret of each peer's link, as `(peer region, secret)`: known to this node and that
    /// peer only, so a request carrying it comes from that region.
    pub link_secrets: Vec<(String, String)>,
    /// The certificate authority `https://` peers' certificates are checked against, besides
    /// the system's roots.
    pub peer_ca: Option<PeerCa>,
    /// How changes travel.
    pub transport: Transport,
    /// How old the history kept for a region that does not answer may grow before it is let
    /// go (`--peer-hold-limit`; the replica must then be re-seeded).
    pub peer_hold_limit: PeerHoldLimit,
    /// How far apart regions' clocks may be (see [`crate::clocks`]).
    pub max_clock_offset: crate::clocks::MaxClockOffset,
}

/// How old the history kept for a region that does not answer may grow (the oldest change
/// still held for it) before this node lets it go, so that disk use does not grow without
/// bound while a region is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHoldLimit(pub std::time::Duration);

impl PeerHoldLimit {
    /// A day: a region away for longer is re-seeded when it returns.
    pub const DEFAULT: PeerHoldLimit = PeerHoldLimit(std::time::Duration::from_secs(24 * 3600));
}

impl Default for PeerHoldLimit {
    fn default() -> Self {
        PeerHoldLimit::DEFAULT
    }
}

/// Certificates a `--peer-ca` file holds, checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCa {
    /// The PEM file.
    pub path: PathBuf,
    /// Its certificates (DER).
    pub certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// Why a `--peer-ca` file cannot be trusted: the node refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum PeerCaError {
    /// The file cannot be read, or is not PEM.
    #[error("cannot read the peer CA {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: rustls::pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("the peer CA {} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// A certificate is not one a trust anchor can be made of.
    #[error("the peer CA {} holds a certificate that cannot be trusted: {reason}", path.display())]
    NotAnAnchor {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: rustls::Error,
    },
}

impl PeerCa {
    /// Reads the PEM certificates of `path` and checks each can be a trust anchor.
    ///
    /// # Errors
    /// [`PeerCaError`].
    pub fn load(path: &Path) -> Result<PeerCa, PeerCaError> {
        use rustls::pki_types::pem::PemObject;
        let unreadable = |reason| PeerCaError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        let certificates = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(unreadable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        if certificates.is_empty() {
            return Err(PeerCaError::NoCertificate(path.to_path_buf()));
        }
        let mut roots = rustls::RootCertStore::empty();
        for certificate in &certificates {
            roots
                .add(certificate.clone())
                .map_err(|reason| PeerCaError::NotAnAnchor {
                    path: path.to_path_buf(),
                    reason,
                })?;
        }
        Ok(PeerCa {
            path: path.to_path_buf(),
            certificates,
        })
    }
}

/// Parses a `--peer-link-secret` value, `REGION=SECRET` (the secret may hold `=`).
///
/// # Errors
/// A message when there is no region or no secret.
pub fn parse_link_secret(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((region, secret)) if !region.trim().is_empty() && !secret.is_empty() => {
            Ok((region.trim().to_string(), secret.to_string()))
        }
        _ => Err("expected REGION=SECRET, with a region and a non-empty secret".into()),
    }
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
        if self.secret.as_deref().is_some_and(str::is_empty)
            || self
                .link_secrets
                .iter()
                .any(|(_, secret)| secret.is_empty())
        {
            return Err(ConfigError::EmptySecret);
        }
        if !self.link_secrets.is_empty() {
            if self.secret.is_some() {
                return Err(ConfigError::SecretKindsMixed);
            }
            let mut named = std::collections::BTreeSet::new();
            for (region, _) in &self.link_secrets {
                if self.peer(region).is_none() {
                    return Err(ConfigError::LinkSecretForNoPeer(region.clone()));
                }
                if !named.insert(region) {
                    return Err(ConfigError::LinkSecretTwice(region.clone()));
                }
            }
            if let Some(peer) = self
                .peers
                .iter()
                .find(|p| self.link_secret(&p.region).is_none())
            {
                return Err(ConfigError::PeerWithoutLinkSecret(peer.region.clone()));
            }
        }
        if self.secret.is_none()
            && self.link_secrets.is_empty()
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

    /// The secret of the link to `region`, when links have their own.
    fn link_secret(&self, region: &str) -> Option<&str> {
        self.link_secrets
            .iter()
            .find(|(r, _)| r == region)
            .map(|(_, secret)| secret.as_str())
    }

    /// True when requests are authenticated per link, so the region a request names is the
    /// region that sent it.
    pub fn tells_regions_apart(&self) -> bool {
        !self.link_secrets.is_empty()
    }

    /// The secret a request to `region` carries, if links are authenticated.
    pub fn secret_for(&self, region: &str) -> Option<&str> {
        match self.tells_regions_apart() {
            true => self.link_secret(region),
            false => self.secret.as_deref(),
        }
    }

    /// True when a request naming `region` and carrying `presented` as its secret may act as
    /// that region's peer: with link secrets, `presented` must be the secret of `region`'s
    /// link; with a group secret, the group's; without any (loopback peers only), any request
    /// may.
    pub fn admits(&self, region: &str, presented: Option<&str>) -> bool {
        let expected = match self.tells_regions_apart() {
            true => match self.link_secret(region) {
                Some(secret) => secret,
                None => return false,
            },
            false => match &self.secret {
                Some(secret) => secret,
                None => return true,
            },
        };
        presented
            .is_some_and(|presented| bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
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
            ..ReplicationConfig::default()
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
        assert!(config.admits("us", Some("right")));
        assert!(!config.admits("us", Some("wrong")));
        assert!(!config.admits("us", Some("righ")));
        assert!(!config.admits("us", None));
        assert!(!config.tells_regions_apart());
        assert_eq!(config.secret_for("us"), Some("right"));
    }

    /// The group's secrets as region ap holds them: the secrets of its links to us and eu.
    fn with_link_secrets(links: &[(&str, &str)]) -> ReplicationConfig {
        let mut config = config(&["us=http://10.0.0.1:1", "ap=http://10.0.0.2:1"], None);
        config.link_secrets = links
            .iter()
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect();
        config
    }

    #[test]
    fn a_link_secret_admits_only_the_region_of_its_link() {
        let config = with_link_secrets(&[("us", "us-eu"), ("ap", "ap-eu")]);
        assert_eq!(config.check(), Ok(()));
        assert!(config.tells_regions_apart());
        assert_eq!(config.secret_for("us"), Some("us-eu"));
        assert_eq!(config.secret_for("ap"), Some("ap-eu"));
        assert!(config.admits("us", Some("us-eu")));
        assert!(config.admits("ap", Some("ap-eu")));
        // ap's credential does not make it us, nor the other way round.
        assert!(!config.admits("us", Some("ap-eu")));
        assert!(!config.admits("ap", Some("us-eu")));
        assert!(!config.admits("us", None));
        assert!(!config.admits("sa", Some("us-eu")), "not a peer");
    }

    #[test]
    fn link_secrets_cover_every_peer_and_nothing_else() {
        assert_eq!(
            with_link_secrets(&[("us", "a")]).check(),
            Err(ConfigError::PeerWithoutLinkSecret("ap".into()))
        );
        assert_eq!(
            with_link_secrets(&[("us", "a"), ("ap", "b"), ("sa", "c")]).check(),
            Err(ConfigError::LinkSecretForNoPeer("sa".into()))
        );
        let mut mixed = with_link_secrets(&[("us", "a"), ("ap", "b")]);
        mixed.secret = Some("group".into());
        assert_eq!(mixed.check(), Err(ConfigError::SecretKindsMixed));
        assert_eq!(
            with_link_secrets(&[("us", "a"), ("ap", "")]).check(),
            Err(ConfigError::EmptySecret)
        );
        assert_eq!(
            with_link_secrets(&[("us", "a"), ("ap", "b"), ("us", "c")]).check(),
            Err(ConfigError::LinkSecretTwice("us".into()))
        );
        assert_eq!(
            parse_link_secret("us-east-1=c2VjcmV0=="),
            Ok(("us-east-1".into(), "c2VjcmV0==".into()))
        );
        assert!(parse_link_secret("=x").is_err());
        assert!(parse_link_secret("us=").is_err());
        assert!(parse_link_secret("just-a-secret").is_err());
    }

    #[test]
    fn a_peer_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("a folder");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            PeerCa::load(&missing),
            Err(PeerCaError::Unreadable { path, .. }) if path == missing
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("written");
        let refused = PeerCa::load(&empty).expect_err("no certificate");
        assert_eq!(
            refused.to_string(),
            format!("the peer CA {} holds no certificate", empty.display())
        );
    }
}
