//! One `bluegreen deploy`, timed from outside: its wall time, the part Docker and the app take
//! (pull, docker run, health wait, docker stop: as its summary line reports them), its SSH
//! round trips, and when it logged the new color healthy.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::support::{shared, Site};

pub struct ToolRun {
    /// From starting the process to its exit (s).
    pub wall: f64,
    /// pull + docker run + health wait + docker stop of the old color (s).
    pub docker: f64,
    pub round_trips: f64,
    pub healthy_at: Instant,
    /// The summary line's drain: the wait for the old color's connections (s).
    pub drain: f64,
    /// Until when (ms after healthy) this host was seen dialing the old color's container.
    pub old_attempts_until_ms: Option<f64>,
}

impl ToolRun {
    /// What the tool itself spends: everything that is not Docker's or the app's.
    pub fn overhead(&self) -> f64 {
        self.wall - self.docker
    }
}

/// Deploys `tag` (redeploying when it is live already) and times it.
pub fn deploy(site: &Site, tag: &str) -> ToolRun {
    let started = Instant::now();
    let mut command = site.bluegreen(&["deploy", "--force", "--image-ref", &shared().image(tag)]);
    if std::env::var_os("BENCH_TRACE").is_some() {
        command.env("SWAP_BENCH_TRACE_SSH", "1");
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = Vec::new();
    let mut healthy_at = None;
    let mut summary = String::new();
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let now = Instant::now();
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!("{:>7.0} ms  {line}", (now - started).as_secs_f64() * 1000.0);
        }
        if line.contains(" healthy after ") {
            healthy_at = Some(now);
        } else if line.contains("SSH round trips") {
            summary = line.clone();
        }
        log.push(line);
    }
    let status = child.wait().unwrap();
    let wall = started.elapsed().as_secs_f64();
    eprintln!("bench:   {}", summary.trim());
    assert!(
        status.success(),
        "deploy of {tag} failed:\n{}",
        log.join("\n")
    );
    ToolRun {
        wall,
        docker: docker_in_summary(&summary),
        round_trips: number_before(&summary, " SSH round trips"),
        drain: number_after(&summary, "drain "),
        old_attempts_until_ms: None,
        healthy_at: healthy_at.expect("the deploy logs `… healthy after …`"),
    }
}

/// pull + docker run + health wait + docker stop of the old color, from the summary line
/// (`pull 0.12s, start 0.31s, health 0.05s …, stop old 0.24s`): the times the commands took on
/// the server (several steps' commands share a round trip, so the log's phases cannot tell).
fn docker_in_summary(summary: &str) -> f64 {
    ["pull ", "start ", "health ", "stop old "]
        .iter()
        .map(|label| number_after(summary, label))
        .sum()
}

fn number_after(text: &str, label: &str) -> f64 {
    text.split(label)
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .next()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

fn number_before(text: &str, label: &str) -> f64 {
    text.split(label)
        .next()
        .and_then(|before| before.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}
