//! The command line: what `tidemark` does with its arguments, from start-up to ordered shutdown.

use crate::Node;
use crate::args::{Cli, ClusterAction, Command, PublishAction, ReplicasAction};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Runs the `tidemark` command line: parses arguments from the process, runs the command,
/// and returns the process exit code.
pub fn main_entry() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TIDEMARK_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,fjall=warn,lsm_tree=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Fault injection for tests: failpoints named in FAILPOINTS (compiled in with the
    // `failpoints` feature only).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tidemark: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), crate::NodeError> {
    match cli.command {
        Command::Publish(args) => {
            let (method, body) = match args.action {
                PublishAction::Status { json: false } => {
                    let status =
                        admin_json(&args.node.endpoint, "publish", reqwest::Method::GET, None)
                            .await?;
                    crate::output::publish_table(&status)
                        .into_iter()
                        .for_each(crate::output::line);
                    return Ok(());
                }
                PublishAction::Status { json: true } => (reqwest::Method::GET, None),
                PublishAction::Enable {
                    table,
                    format,
                    topic,
                    partitions,
                    replication_factor,
                    from,
                } => (
                    reqwest::Method::POST,
                    Some(serde_json::json!({
                        "TableName": table, "Enabled": true, "Format": format, "Topic": topic,
                        "Partitions": partitions, "ReplicationFactor": replication_factor,
                        "From": from,
                    })),
                ),
                PublishAction::Disable { table } => (
                    reqwest::Method::POST,
                    Some(serde_json::json!({"TableName": table, "Enabled": false})),
                ),
            };
            admin_request(&args.node.endpoint, "publish", method, body).await
        }
        Command::Replicas(args) => {
            let (path, method, body) = match args.action {
                ReplicasAction::Status { json: false } => {
                    let status =
                        admin_json(&args.node.endpoint, "replicas", reqwest::Method::GET, None)
                            .await?;
                    crate::output::replicas_table(&status, chrono::Utc::now())
                        .into_iter()
                        .for_each(crate::output::line);
                    return Ok(());
                }
                ReplicasAction::Status { json: true } => {
                    ("replicas".to_string(), reqwest::Method::GET, None)
                }
                ReplicasAction::Conflicts { table } => (
                    format!("replicas/conflicts?table={table}"),
                    reqwest::Method::GET,
                    None,
                ),
                ReplicasAction::Retry => {
                    ("replicas/retry".to_string(), reqwest::Method::POST, None)
                }
                ReplicasAction::Verify { table } => (
                    "replicas/verify".to_string(),
                    reqwest::Method::POST,
                    Some(serde_json::json!({ "TableName": table })),
                ),
            };
            admin_request(&args.node.endpoint, &path, method, body).await
        }
        Command::Cluster(args) => match args.action {
            ClusterAction::Status { json: false } => {
                let status =
                    admin_json(&args.node.endpoint, "cluster", reqwest::Method::GET, None).await?;
                crate::output::cluster_tables(&status)
                    .into_iter()
                    .for_each(crate::output::line);
                Ok(())
            }
            ClusterAction::Status { json: true } => {
                admin_request(&args.node.endpoint, "cluster", reqwest::Method::GET, None).await
            }
        },
        Command::Tables(args) => crate::operator::tables(args).await,
        Command::Stream(args) => crate::operator::stream(args).await,
        Command::Export(args) => crate::transfers::export(args).await,
        Command::Import(args) => crate::transfers::import(args).await,
        Command::Restore(args) => crate::transfers::restore_from_kafka(args).await,
        Command::TtlSweep(node) => {
            admin_request(&node.endpoint, "ttl/sweep", reqwest::Method::POST, None).await
        }
        Command::Serve(args) => {
            let mut config = args.node_config();
            config.credentials = args.credentials()?;
            let node = Node::start_with_clock(config.clone(), node_clock()?).await?;
            tracing::info!(
                "tidemark listening on {}://{} (region {}, data {}, durability {:?})",
                if config.tls.is_some() {
                    "https"
                } else {
                    "http"
                },
                node.local_addr(),
                config.store.region,
                config.store.data_dir.display(),
                config.store.durability
            );
            tokio::select! {
                _ = shutdown_signal() => {}
                reason = node.failed() => {
                    // Nothing more is acknowledged; journal recovery runs on the next start.
                    return Err(crate::NodeError::Failed(reason.to_string()));
                }
            }
            tracing::info!("shutting down: draining requests (a second signal exits at once)");
            tokio::spawn(async {
                shutdown_signal().await;
                std::process::exit(130);
            });
            node.stop().await?;
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Calls `/admin/<path>` on a running node and prints its JSON answer.
async fn admin_request(
    endpoint: &str,
    path: &str,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
) -> Result<(), crate::NodeError> {
    let answer = admin_json(endpoint, path, method, body).await?;
    crate::output::line(serde_json::to_string_pretty(&answer).unwrap_or_default());
    Ok(())
}

/// Calls `/admin/<path>` on a running node and returns its JSON answer.
async fn admin_json(
    endpoint: &str,
    path: &str,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, crate::NodeError> {
    let url = format!("{}/admin/{path}", endpoint.trim_end_matches('/'));
    let failed = |e: String| crate::NodeError::Admin(format!("{url}: {e}"));
    let (headers, body): (&[(&str, &str)], Vec<u8>) = match body {
        Some(body) => (
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        ),
        None => (&[], Vec::new()),
    };
    let response = crate::client::send(method, &url, headers, body)
        .await
        .map_err(failed)?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.map_err(|e| failed(e.to_string()))?;
    if !status.is_success() {
        let pretty = serde_json::to_string_pretty(&answer).unwrap_or_default();
        return Err(failed(format!("{status}: {pretty}")));
    }
    Ok(answer)
}

/// The node's wall clock: the system's. Test builds (the `failpoints` feature) shift it by
/// `TIDEMARK_TEST_CLOCK_SHIFT_MILLIS` (signed), so tests can run a region whose clock is off.
///
/// # Errors
/// A shift that is not a whole number of milliseconds.
fn node_clock() -> Result<std::sync::Arc<dyn tidemark_core::Clock>, crate::NodeError> {
    #[cfg(feature = "failpoints")]
    if let Ok(shift) = std::env::var("TIDEMARK_TEST_CLOCK_SHIFT_MILLIS") {
        let shift: i64 = shift.trim().parse().map_err(|_| {
            crate::NodeError::Config(format!(
                "TIDEMARK_TEST_CLOCK_SHIFT_MILLIS is '{shift}', not a number of milliseconds"
            ))
        })?;
        tracing::warn!(shift, "TEST BUILD: this node's wall clock is shifted");
        return Ok(std::sync::Arc::new(tidemark_core::OffsetClock::new(
            tidemark_core::SystemClock,
            shift,
        )));
    }
    Ok(std::sync::Arc::new(tidemark_core::SystemClock))
}
