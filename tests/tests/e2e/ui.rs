//! The status page, in a real browser: headless Chromium (Debian's `chromium`) loads `/ui` from
//! a test node, the test reads the table list and a plot's data from the page's DOM, and keeps
//! a screenshot (`<target tmp>/status-page.png`).

use std::time::Duration;

use tidemark_tests::TestNode;
use tidemark_tests::load::keyed_table;

use crate::common::s;

/// The browser, or a failure that says how to get it.
fn chromium() -> String {
    for name in ["chromium", "chromium-browser"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return name.to_string();
        }
    }
    panic!(
        "the status page test needs a browser: apt-get install chromium (scripts/test.sh installs it)"
    );
}

/// Runs headless Chromium on `url` with `args`, letting the page's script run for 5 s of
/// virtual time; returns its standard output.
async fn browse(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("run chromium");
    assert!(output.status.success(), "chromium failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The value of `attribute` in the element of `dom` whose id is `id`.
fn attribute(dom: &str, id: &str, attribute: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let tag_end = dom[at..].find('>')? + at;
    let tag_start = dom[..at].rfind('<')?;
    let tag = &dom[tag_start..tag_end];
    let key = format!("{attribute}=\"");
    let from = tag.find(&key)? + key.len();
    let to = tag[from..].find('"')? + from;
    Some(tag[from..to].to_string())
}

#[tokio::test]
async fn the_status_page_shows_tables_and_live_plots_in_a_browser() {
    let node = TestNode::start().await;
    let client = node.client();
    keyed_table(&client, "shown").send().await.unwrap();
    for key in ["a", "b", "c"] {
        client
            .put_item()
            .table_name("shown")
            .item("p", s(key))
            .send()
            .await
            .unwrap();
    }
    // A few samples, one a second.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let url = format!("{}/ui", node.endpoint());
    let dom = browse(&url, &["--dump-dom"]).await;
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page's script ran: {dom}"
    );
    let row_start = dom
        .find("data-table=\"shown\"")
        .expect("a row for the table");
    let row = &dom[row_start..row_start + dom[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains("<td>shown</td>") && row.contains(">3</td>"),
        "{row}"
    );
    let points: usize = attribute(&dom, "plot-requests", "data-points")
        .expect("the request plot's data")
        .parse()
        .unwrap();
    assert!(points >= 3, "{points} samples plotted");
    let polyline = &dom[dom.find("id=\"plot-requests\"").unwrap()..];
    let drawn = polyline
        .split("<polyline points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap();
    assert_eq!(
        drawn.split(' ').count(),
        points,
        "every sample is a point of the line"
    );
    // The plotted requests are the node's: the create and the three puts, at least.
    let data: serde_json::Value = reqwest::get(format!("{}/ui/data", node.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let requests: u64 = data["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert!(requests >= 4, "{data}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    browse(
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
        ],
    )
    .await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot at {}", shot.display());
    eprintln!("status page screenshot: {}", shot.display());
}

#[tokio::test]
async fn the_status_page_of_a_cluster_node_shows_its_members_and_partitions() {
    let broker = tidemark_tests::kafka::Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--cluster",
        "shown",
        "--kafka-brokers",
        &broker.brokers(),
        "--cluster-partitions",
        "2",
        "--kafka-option",
        "fetch.wait.max.ms=20",
    ];
    let node =
        tidemark_tests::ChildNode::start(crate::common::node_binary(), dir.path(), &args).await;
    let client = tidemark_tests::client_for(&node.endpoint());
    keyed_table(&client, "shown").send().await.unwrap();
    client
        .put_item()
        .table_name("shown")
        .item("p", s("a"))
        .send()
        .await
        .unwrap();
    let dom = browse(&format!("{}/ui", node.endpoint()), &["--dump-dom"]).await;
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page's script ran: {dom}"
    );
    assert!(
        dom.contains(&format!(
            "data-member=\"{}\" data-live=\"true\"",
            node.endpoint()
        )),
        "the node is a live member: {dom}"
    );
    for partition in ["shown/0", "shown/1"] {
        assert!(
            dom.contains(&format!("data-partition=\"{partition}\"")),
            "{partition}: {dom}"
        );
    }
}
