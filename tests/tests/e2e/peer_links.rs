//! Peer links that are encrypted and tell regions apart, end to end: three regions serving
//! HTTPS with certificates of a private CA (`--peer-ca`), reaching each other at `https://`
//! URLs with a secret per link (`--peer-link-secret`), form a global table and converge; a
//! region whose peer's certificate it cannot check says so in its link state; and a request
//! carrying one region's credential cannot ship as another region, nor ship changes another
//! region stamped, nor send seeding pages it is not seeding.

use std::time::Duration;

use tidemark_core::model::AttributeValue as CoreValue;
use tidemark_replicator::protocol::{CHANGES_CONTENT_TYPE, ChangeBatch, WireChange};
use tidemark_tests::cluster::{Cluster, ClusterSettings, replica_create};
use tidemark_tests::wait_until;

use crate::common::{
    create_table, get_consistent, node_binary, put_value, s, wait_for_group, wait_for_value,
};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

/// A private CA and, per region, a certificate it signed for 127.0.0.1 and localhost, as
/// files in a folder.
struct Pki {
    ca_pem: String,
    ca_file: String,
    /// `(certificate file, key file)` by region index.
    nodes: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Pki {
    fn new(regions: usize) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_string_lossy().to_string()
        };
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "tidemark test peers CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let ca_pem = ca_cert.pem();
        let ca_file = file("ca.pem", &ca_pem);
        let nodes = (0..regions)
            .map(|i| {
                let params =
                    rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                        .unwrap();
                let key = rcgen::KeyPair::generate().unwrap();
                let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
                (
                    file(&format!("node{i}.pem"), &cert.pem()),
                    file(&format!("node{i}.key"), &key.serialize_pem()),
                )
            })
            .collect();
        Pki {
            ca_pem,
            ca_file,
            nodes,
            _dir: dir,
        }
    }
}

/// The secret of the link between regions `i` and `j`: only those two nodes hold it.
fn link_secret(i: usize, j: usize) -> String {
    format!("link-{}-{}-secret", i.min(j), i.max(j))
}

/// Region `i`'s `--peer-link-secret` arguments: one per other region of `count`.
fn link_secret_args(i: usize, count: usize) -> Vec<String> {
    (0..count)
        .filter(|j| *j != i)
        .flat_map(|j| {
            [
                "--peer-link-secret".to_string(),
                format!("{}={}", REGIONS[j], link_secret(i, j)),
            ]
        })
        .collect()
}

/// Region `i`'s arguments to serve HTTPS with its certificate, and its link secrets.
fn tls_args(pki: &Pki, i: usize, count: usize) -> Vec<String> {
    let (cert, key) = &pki.nodes[i];
    let mut args = vec![
        "--tls-cert".to_string(),
        cert.clone(),
        "--tls-key".to_string(),
        key.clone(),
    ];
    args.extend(link_secret_args(i, count));
    args
}

/// Three regions serving HTTPS with a private CA's certificates, peers at `https://` URLs
/// checked against `--peer-ca`, a secret per link: a global table forms across them and a
/// write in every region reaches every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_https_regions_with_a_private_ca_and_link_secrets_converge() {
    let pki = Pki::new(REGIONS.len());
    let settings = ClusterSettings {
        shared: vec![
            "--durability".into(),
            "buffer".into(),
            "--peer-ca".into(),
            pki.ca_file.clone(),
        ],
        per_region: (0..REGIONS.len())
            .map(|i| tls_args(&pki, i, REGIONS.len()))
            .collect(),
        https_ca: Some(pki.ca_pem.clone()),
        ..ClusterSettings::default()
    };
    let cluster = Cluster::start_with(node_binary(), &REGIONS, settings).await;
    let table = "encrypted";
    let first = cluster.client(0, OP_TIMEOUT);
    create_table(&first, table, false).await;
    put_value(&first, table, "before", "seeded").await;
    for (joining, members) in [(1, vec![0, 1]), (2, vec![0, 1, 2])] {
        first
            .update_table()
            .table_name(table)
            .replica_updates(replica_create(REGIONS[joining]))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "ReplicaUpdates Create {} over HTTPS succeeds: {e:?}",
                    REGIONS[joining]
                )
            });
        wait_for_group(&cluster, table, &members).await;
    }
    for (i, region) in REGIONS.iter().enumerate() {
        put_value(
            &cluster.client(i, OP_TIMEOUT),
            table,
            &format!("from-{i}"),
            region,
        )
        .await;
    }
    for i in 0..REGIONS.len() {
        wait_for_value(&cluster, i, table, "before", "seeded").await;
        for (from, region) in REGIONS.iter().enumerate() {
            wait_for_value(&cluster, i, table, &format!("from-{from}"), region).await;
        }
    }
}

/// A reqwest client trusting only `ca_pem`, for a node's operator endpoints over HTTPS.
fn https_reqwest(ca_pem: &str) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap()
}

/// A region that does not trust its peer's certificate (no `--peer-ca`) does not replicate to
/// it, and its link state says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_whose_certificate_is_not_trusted_shows_why_in_the_link_state() {
    let pki = Pki::new(2);
    let (trusting, distrusting) = (0, 1);
    let mut per_region: Vec<Vec<String>> = (0..2).map(|i| tls_args(&pki, i, 2)).collect();
    per_region[trusting].extend(["--peer-ca".to_string(), pki.ca_file.clone()]);
    let settings = ClusterSettings {
        shared: vec!["--durability".into(), "buffer".into()],
        per_region,
        https_ca: Some(pki.ca_pem.clone()),
        ..ClusterSettings::default()
    };
    let cluster = Cluster::start_with(node_binary(), &REGIONS[..2], settings).await;
    let table = "distrusted";
    let client = cluster.client(trusting, OP_TIMEOUT);
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[distrusting]))
        .send()
        .await
        .expect("the trusting region reaches the other to create its replica");
    put_value(
        &cluster.client(distrusting, OP_TIMEOUT),
        table,
        "stuck",
        "here",
    )
    .await;

    let admin = https_reqwest(&pki.ca_pem);
    let url = format!("{}/admin/replicas", cluster.endpoint(distrusting));
    let mut last = serde_json::Value::Null;
    let explained = wait_until(WAIT, async || {
        let Ok(answer) = admin.get(&url).send().await else {
            return false;
        };
        last = answer.json().await.unwrap_or_default();
        last["Replicas"].as_array().is_some_and(|links| {
            links.iter().any(|link| {
                link["Region"] == REGIONS[trusting]
                    && link["Link"]["Reachable"] == false
                    && link["Link"]["LastError"]
                        .as_str()
                        .is_some_and(|e| e.contains("invalid peer certificate"))
            })
        })
    })
    .await;
    assert!(
        explained,
        "expected {}'s link to {} to be unreachable with the certificate error; last seen: \
         {last}",
        REGIONS[distrusting], REGIONS[trusting]
    );
    assert_eq!(
        get_consistent(&client, table, "stuck").await,
        None,
        "nothing crosses a link whose certificate is not trusted"
    );
}

/// A change batch with one change of `key`, stamped by `stamp_region`.
fn batch(table: &str, key: &str, stamp_region: &str) -> Vec<u8> {
    let item = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), CoreValue::S(v.to_string())))
            .collect()
    };
    ChangeBatch {
        changes: vec![WireChange {
            table: table.into(),
            keys: item(&[("p", key)]),
            new_image: Some(item(&[("p", key), ("v", "shipped")])),
            clock: 99_999_999_999_999_999,
            region: stamp_region.into(),
        }],
        ..ChangeBatch::default()
    }
    .encode()
}

/// Posts `body` to `path` on `endpoint` as region `region` with `secret`; the status and body.
async fn post_as(
    endpoint: &str,
    path: &str,
    region: &str,
    secret: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}{path}"))
        .header("content-type", CHANGES_CONTENT_TYPE)
        .header("x-tidemark-region", region)
        .header("x-tidemark-peer-secret", secret)
        .body(body)
        .send()
        .await
        .expect("the peer endpoint answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

/// With a secret per link, a request proves its region: one region's credentials do not let
/// it ship as another, a region ships only changes it stamped, and seeding pages come only
/// from the region seeding the replica. Each refusal is 403 and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_proves_which_region_it_is_and_ships_only_its_own_changes() {
    let settings = ClusterSettings {
        shared: vec!["--durability".into(), "buffer".into()],
        per_region: (0..REGIONS.len())
            .map(|i| link_secret_args(i, REGIONS.len()))
            .collect(),
        https_ca: None,
        ..ClusterSettings::default()
    };
    let cluster = Cluster::start_with(node_binary(), &REGIONS, settings).await;
    let (us, eu, ap) = (0, 1, 2);
    let client = cluster.client(us, OP_TIMEOUT);
    let table = "proven";
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[eu]))
        .send()
        .await
        .expect("ReplicaUpdates Create succeeds between regions with link secrets");
    wait_for_group(&cluster, table, &[us, eu]).await;
    let endpoint = cluster.endpoint(us);
    let changes = "/_tidemark/peer/changes";

    let refused = [
        (
            "ap's own link secret with us, naming eu",
            changes,
            REGIONS[eu],
            link_secret(us, ap),
            REGIONS[eu],
        ),
        (
            "the secret of the eu-ap link (which ap holds), naming eu",
            changes,
            REGIONS[eu],
            link_secret(eu, ap),
            REGIONS[eu],
        ),
        (
            "ap with its own credential, shipping a change eu stamped",
            changes,
            REGIONS[ap],
            link_secret(us, ap),
            REGIONS[eu],
        ),
        (
            "eu sending a seeding page of a replica it does not seed",
            "/_tidemark/peer/seed",
            REGIONS[eu],
            link_secret(us, eu),
            REGIONS[eu],
        ),
    ];
    for (n, (scenario, path, region, secret, stamp)) in refused.into_iter().enumerate() {
        let key = format!("refused-{n}");
        let (status, body) =
            post_as(&endpoint, path, region, &secret, batch(table, &key, stamp)).await;
        assert_eq!(
            status, 403,
            "expected {scenario} to be refused with 403, got {status}: {body}"
        );
        if n == 2 {
            assert!(
                body.contains("from region ap-south-1")
                    && body.contains("stamped by region eu-west-1"),
                "expected the refusal to name both regions, got {body}"
            );
        }
        let item = get_consistent(&client, table, &key).await;
        assert!(
            item.is_none(),
            "expected {scenario} to write nothing, found {item:?}"
        );
    }

    let (status, body) = post_as(
        &endpoint,
        changes,
        REGIONS[eu],
        &link_secret(us, eu),
        batch(table, "accepted", REGIONS[eu]),
    )
    .await;
    assert_eq!(
        status, 200,
        "expected eu's own change with the us-eu link's secret to be applied, got {body}"
    );
    let item = get_consistent(&client, table, "accepted").await;
    assert_eq!(
        item.as_ref().and_then(|i| i.get("v")),
        Some(&s("shipped")),
        "expected eu's change to be written, found {item:?}"
    );
}

/// Through Kafka, region R's topic carries only R's changes: a message in it holding a change
/// another region stamped is neither applied nor skipped, and R's changes after it stop there,
/// while the other direction goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_change_in_a_regions_topic_stops_that_topic_and_is_not_applied() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let broker = tidemark_tests::kafka::Broker::start().await;
    let brokers = broker.brokers();
    let cluster = Cluster::start(
        node_binary(),
        &REGIONS[..2],
        &[
            "--durability",
            "buffer",
            "--replication-transport",
            "kafka",
            "--kafka-brokers",
            &brokers,
        ],
    )
    .await;
    let (us, eu) = (0, 1);
    let table = "forged";
    let us_client = cluster.client(us, OP_TIMEOUT);
    let eu_client = cluster.client(eu, OP_TIMEOUT);
    create_table(&us_client, table, false).await;
    us_client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[eu]))
        .send()
        .await
        .expect("add a replica");
    wait_for_group(&cluster, table, &[us, eu]).await;
    put_value(&eu_client, table, "before", "from-eu").await;
    wait_for_value(&cluster, us, table, "before", "from-eu").await;

    // In eu's topic, a change stamped by us (anyone who can write to the topic could try).
    let producer: FutureProducer = tidemark_kafka::KafkaSettings::new(brokers)
        .producer(&[])
        .expect("a producer");
    let forged = batch(table, "forged", REGIONS[us]);
    let eu_topic = tidemark_replicator::kafka::topic(REGIONS[eu], table);
    producer
        .send(
            FutureRecord::<(), _>::to(&eu_topic)
                .partition(0)
                .payload(&forged),
            Duration::from_secs(10),
        )
        .await
        .expect("the forged message is in eu's topic");
    put_value(&eu_client, table, "after", "from-eu").await;
    // The other direction still flows: by the time us's write is in eu, us has read eu's
    // topic past the forged message many times over.
    put_value(&us_client, table, "other-way", "from-us").await;
    wait_for_value(&cluster, eu, table, "other-way", "from-us").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(
        get_consistent(&us_client, table, "forged").await,
        None,
        "a change stamped by us in eu's topic is not applied"
    );
    assert_eq!(
        get_consistent(&us_client, table, "after").await,
        None,
        "eu's topic is not read past the forged message (it is not skipped)"
    );
}
