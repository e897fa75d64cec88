//! What operator commands print, and how: a line at a time on standard output, stopping
//! quietly when the reader has gone (`tidemark stream tail T | head` ends as `head` does,
//! without a panic), and the tables `replicas status` and `publish status` print for people
//! (their `--json` prints the node's answer as it is).

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Prints `text` and a newline on standard output. When the reader has closed the pipe the
/// command is over: the process exits with success, as Unix tools end in a pipeline; any
/// other write failure ends it with an error.
pub(crate) fn line(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    match write_line(&mut out, text) {
        Written::Yes => {}
        Written::ReaderGone => std::process::exit(0),
        Written::Failed(e) => {
            eprintln!("tidemark: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// How a line went out.
#[derive(Debug)]
enum Written {
    Yes,
    /// The other end of the pipe is closed: nobody reads any more.
    ReaderGone,
    Failed(std::io::Error),
}

fn write_line(out: &mut impl Write, text: impl std::fmt::Display) -> Written {
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Written::Yes,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Written::ReaderGone,
        Err(e) => Written::Failed(e),
    }
}

/// A time in milliseconds since the epoch as ISO 8601 and how long ago, as of `now`:
/// `2026-12-07T19:30:02Z (3 s ago)`.
fn when(millis: Option<u64>, now: DateTime<Utc>) -> String {
    let Some(at) = millis
        .and_then(|m| i64::try_from(m).ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    else {
        return "-".into();
    };
    let ago = now.signed_duration_since(at).num_seconds().max(0);
    format!(
        "{} ({} ago)",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        span(ago)
    )
}

/// A number of seconds as people read it: `3 s`, `4 min`, `2 h`, `3 d`.
fn span(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("-")
}

fn number(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .filter(|v| !v.is_null())
        .map_or_else(|| "-".into(), Value::to_string)
}

/// `GET /admin/replicas` as a table: a line per global table and peer, then the changes put
/// aside.
pub(crate) fn replicas_table(status: &Value, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<24} {:<16} {:<10} {:>9} {:>9} {:<9} {:>8}  {:<34} NOTES",
        "TABLE", "REGION", "STATUS", "LAG", "LAG MS", "LINK", "CLOCK MS", "LAST CONTACT"
    )];
    for link in status["Replicas"].as_array().into_iter().flatten() {
        let reachable = match link.pointer("/Link/Reachable") {
            Some(Value::Bool(true)) => "up",
            _ if link
                .pointer("/Link/LastError")
                .is_some_and(|e| !e.is_null()) =>
            {
                "down"
            }
            _ => "-",
        };
        let mut notes = Vec::new();
        if link["NeedsReseed"] == true {
            notes.push("needs a re-seed".to_string());
        }
        for stop in link["Stopped"].as_array().into_iter().flatten() {
            notes.push(format!(
                "partition {} stopped at {}: {}",
                number(stop, "/Partition"),
                number(stop, "/Offset"),
                text(stop, "/State")
            ));
        }
        if let Some(error) = link.pointer("/Link/LastError").and_then(Value::as_str) {
            notes.push(error.to_string());
        }
        lines.push(format!(
            "{:<24} {:<16} {:<10} {:>9} {:>9} {:<9} {:>8}  {:<34} {}",
            text(link, "/Table"),
            text(link, "/Region"),
            text(link, "/ReplicaStatus"),
            number(link, "/LagRecords"),
            number(link, "/LagMillis"),
            reachable,
            number(link, "/Link/ClockOffsetMillis"),
            when(
                link.pointer("/Link/LastContactMillis")
                    .and_then(Value::as_u64),
                now
            ),
            notes.join("; ")
        ));
    }
    let parked = status["ParkedCount"].as_u64().unwrap_or(0);
    lines.push(format!(
        "{parked} replicated change(s) put aside{}",
        if parked > 0 {
            " (`tidemark replicas status --json` lists them; `tidemark replicas retry` applies them again)"
        } else {
            ""
        }
    ));
    lines
}

/// `GET /admin/publish` as a table: a line per published table.
pub(crate) fn publish_table(status: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<24} {:<32} {:<20} {:>12} {:>9} {:>8}  LAST ERROR",
        "TABLE", "TOPIC", "FORMAT", "THROUGH", "LAG", "LAG S"
    )];
    for table in status["Tables"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{:<24} {:<32} {:<20} {:>12} {:>9} {:>8}  {}",
            text(table, "/TableName"),
            text(table, "/Topic"),
            text(table, "/Format"),
            number(table, "/PublishedThrough"),
            number(table, "/LagRecords"),
            number(table, "/LagSeconds"),
            text(table, "/LastError"),
        ));
    }
    lines
}

/// `tidemark cluster status`: the members, then each log partition the node reads.
pub(crate) fn cluster_tables(status: &Value) -> Vec<String> {
    let mut lines = vec![
        format!(
            "cluster {}, node {}",
            text(status, "/Cluster"),
            text(status, "/Node")
        ),
        format!("{:<40} {:>6} {:>18}", "MEMBER", "LIVE", "LAST HEARTBEAT MS"),
    ];
    for member in status["Members"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{:<40} {:>6} {:>18}",
            text(member, "/Node"),
            if member["Live"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            },
            number(member, "/LastHeartbeatMsAgo"),
        ));
    }
    lines.push(format!(
        "{:<24} {:<40} {:>9} {:>12} {:>12} {:>9}",
        "TABLE", "LOG", "PARTITION", "APPLIED", "END", "LAG"
    ));
    for log in status["Logs"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{:<24} {:<40} {:>9} {:>12} {:>12} {:>9}",
            text(log, "/Table"),
            text(log, "/Log"),
            number(log, "/Partition"),
            number(log, "/Applied"),
            number(log, "/End"),
            number(log, "/Lag"),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_quietly() {
        assert!(matches!(
            write_line(&mut ClosedPipe, "x"),
            Written::ReaderGone
        ));
        let mut kept = Vec::new();
        assert!(matches!(write_line(&mut kept, "x"), Written::Yes));
        assert_eq!(kept, b"x\n");
    }

    #[test]
    fn times_read_as_iso_8601_and_how_long_ago() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_796_671_500_000).unwrap();
        assert_eq!(
            when(Some(1_796_671_497_000), now),
            "2026-12-07T19:24:57Z (3 s ago)"
        );
        assert_eq!(when(None, now), "-");
        assert_eq!(span(300), "5 min");
        assert_eq!(span(3 * 86_400), "3 d");
    }

    #[test]
    fn replica_links_print_a_line_each_with_what_is_wrong() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_796_671_500_000).unwrap();
        let status = serde_json::json!({
            "Replicas": [{
                "Table": "orders", "Region": "eu-west-1", "ReplicaStatus": "ACTIVE",
                "LagRecords": 12, "LagMillis": 40,
                "Link": {"Reachable": false, "LastContactMillis": 1_796_671_440_000u64,
                         "LastError": "peer eu-west-1 is unreachable: refused", "Shipped": 3},
                "NeedsReseed": true
            }],
            "ParkedCount": 0, "Parked": []
        });
        let lines = replicas_table(&status, now);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("TABLE"));
        for part in [
            "orders",
            "eu-west-1",
            "ACTIVE",
            "12",
            "down",
            "(60 s ago)",
            "needs a re-seed",
            "refused",
        ] {
            assert!(lines[1].contains(part), "{part} in {}", lines[1]);
        }
        assert_eq!(lines[2], "0 replicated change(s) put aside");
    }
}
