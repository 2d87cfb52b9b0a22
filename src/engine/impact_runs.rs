//! The impact count through whole runs on the fake host (see `faults.rs` for the host and the
//! helpers). Commands take [`LATENCY`] here, as on a real server, so the prober, which runs
//! every 50 ms beside the steps, gets its turns.

use std::time::Duration;

use super::faults::{config, last_history_entry, prepared, run, serving, Command};
use crate::testing::fake_host::Server;

const LATENCY: Duration = Duration::from_millis(100);

async fn second_deploy(prepare: impl FnOnce(&mut Server)) -> (Server, super::swap::Summary) {
    let config = config();
    let mut one = prepared(&config, &[Command::Deploy("v1")]).await;
    one.latency = LATENCY;
    prepare(&mut one);
    let (after, outcome) = run(&config, one, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap_or_else(|e| panic!("{e:#}"));
    (after, summary)
}

#[tokio::test]
async fn requests_are_counted_per_color_from_the_start_until_the_old_color_stops() {
    let (after, summary) = second_deploy(|_| {}).await;
    let impact = summary.impact.clone().expect("requests were counted");
    assert!(impact.blue.requests >= 1, "{}", impact.describe());
    assert!(impact.green.requests >= 1, "{}", impact.describe());
    assert_eq!(impact.total.failed(), 0, "{}", impact.describe());
    assert_eq!(
        impact.total.requests,
        impact.blue.requests + impact.green.requests + impact.unattributed.requests
    );
    // The verification proved the switch by connections, as it does without a prober.
    assert!(
        summary.proof.contains("new connections"),
        "{}",
        summary.proof
    );
    let line = summary.line();
    assert!(
        line.ends_with(&format!("; {}", impact.describe())),
        "{line}"
    );
    assert!(line.contains("; 0 failed of "), "{line}");
    let entry = last_history_entry(&after);
    assert_eq!(entry["result"], "success", "{entry}");
    assert_eq!(
        entry["impact"]["requests"], impact.total.requests,
        "{entry}"
    );
    assert_eq!(entry["impact"]["blue"]["requests"], impact.blue.requests);
    assert_eq!(entry["impact"]["green"]["requests"], impact.green.requests);
}

/// The verification judges routing by the connections each color accepted since the baseline;
/// a probe request reaching the old color in between would turn "unverified" (no evidence
/// either way) into "the requests still reach blue" and a failed deploy after 10 s.
#[tokio::test]
async fn the_prober_is_quiet_while_the_verification_reads_connections() {
    let (after, summary) = second_deploy(|server| {
        server.hidden_ports.insert(8082);
    })
    .await;
    assert!(summary.proof.starts_with("unverified"), "{}", summary.proof);
    let impact = summary.impact.expect("requests were counted");
    assert!(impact.blue.requests >= 1, "{}", impact.describe());
    // Unverified: nothing is attributed to green by phase (the fake app never names it).
    assert_eq!(impact.green.requests, 0, "{}", impact.describe());
    assert!(impact.unattributed.requests >= 1, "{}", impact.describe());
    assert_eq!(serving(&after).map(|(port, _)| port), Some(8082));
}

/// Without a bake the deploy stands, but the count says what the new color's answers were.
#[tokio::test]
async fn a_new_color_failing_requests_is_counted_against_it() {
    let (_, summary) = second_deploy(|server| {
        let flaky = server.registry.get_mut("reg.example/app:v2").unwrap();
        flaky.errors_every = 2;
    })
    .await;
    let impact = summary.impact.clone().expect("requests were counted");
    assert!(impact.green.server_errors >= 1, "{}", impact.describe());
    assert_eq!(impact.blue.failed(), 0, "{}", impact.describe());
    let line = summary.line();
    assert!(line.contains("× 5xx"), "{line}");
    assert!(!line.contains("; 0 failed of "), "{line}");
}
