//! What one action run did, gathered as it goes; rendered as the step summary (here) and the
//! outputs (`outputs.rs`). Only what is known is shown: no empty rows, no empty backticks.

use crate::color::Color;
use crate::engine::counts::Impact;

/// How the run ended, as the `result` output says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunResult {
    #[default]
    Success,
    Failure,
    Cancelled,
    /// The image was already live: nothing changed.
    Unchanged,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
            RunResult::Cancelled => "cancelled",
            RunResult::Unchanged => "unchanged",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            RunResult::Success => "✅",
            RunResult::Failure => "❌",
            RunResult::Cancelled => "⏹️",
            RunResult::Unchanged => "☑️",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub command: String,
    pub result: RunResult,
    pub environment: String,
    pub commit: String,
    /// `https://github.com/o/r`, for the commit link.
    pub repository_url: Option<String>,
    /// The readable immutable tag, `prod-0123456`.
    pub tag: Option<String>,
    /// The image this run deployed or found live, by digest.
    pub image: Option<String>,
    pub previous_image: Option<String>,
    pub old: Option<Color>,
    pub new: Option<Color>,
    /// The color serving traffic when the run ended, when known for sure.
    pub serving_color: Option<Color>,
    /// (phase, seconds) in the order they ran.
    pub phases: Vec<(String, f64)>,
    pub total_seconds: f64,
    pub health_attempts: Option<u32>,
    /// What the bake window's probe requests got, when it ran and passed.
    pub bake: Option<String>,
    /// What the probe requests through nginx got from the new color's start until the old one
    /// stopped (or the run failed), when any were counted.
    pub impact: Option<Impact>,
    pub failure: Option<String>,
    /// What serves now, in words, after a failure.
    pub serving: Option<String>,
    /// A failed run's exit code: 2 means nothing on the server was touched.
    pub exit_code: Option<u8>,
    pub logs: Vec<String>,
    /// What a read-only command found (status, unlock), one line each.
    pub lines: Vec<String>,
    /// `plan`: the server commands a deploy would run.
    pub plan: Vec<String>,
    pub notices: Vec<String>,
    pub run_url: Option<String>,
}

impl Report {
    pub fn digest(&self) -> Option<&str> {
        self.image.as_deref().and_then(digest_of)
    }

    /// The rollback target, when a rollback applies: this run moved traffic to a new color and
    /// the previous one is known. After a failure the old color still serves, so it never does.
    fn rollback_target(&self) -> Option<Color> {
        let swapped =
            matches!(self.command.as_str(), "ship" | "deploy") && self.result == RunResult::Success;
        self.old.filter(|_| swapped)
    }
}

fn digest_of(image: &str) -> Option<&str> {
    image.split_once('@').map(|(_, digest)| digest)
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min(DIGEST_PREFIX.len() + 12)]
}

const DIGEST_PREFIX: &str = "sha256:";

/// Every `sha256:` digest in `text` cut to its short form (a phase named after the image it
/// pulls would otherwise stretch its table by 64 hex digits).
fn shorten_digests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(DIGEST_PREFIX) {
        let start = at + DIGEST_PREFIX.len();
        let hex = rest[start..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len() - start);
        out.push_str(&rest[..at]);
        out.push_str(short_digest(&rest[at..start + hex]));
        rest = &rest[start + hex..];
    }
    out.push_str(rest);
    out
}

/// An image reference for a table: its short digest, else the reference.
fn short_image(image: &str) -> String {
    match digest_of(image) {
        Some(digest) => format!("`{}`", short_digest(digest)),
        None => format!("`{image}`"),
    }
}

fn title(report: &Report) -> String {
    let (to, of, on) = match report.environment.as_str() {
        "" => (String::new(), String::new(), String::new()),
        environment => (
            format!(" to `{environment}`"),
            format!(" of `{environment}`"),
            format!(" on `{environment}`"),
        ),
    };
    let what = match (report.command.as_str(), report.result) {
        ("ship" | "deploy", RunResult::Success) => format!("deployed{to}"),
        ("ship" | "deploy", RunResult::Unchanged) => format!("already live{on}, nothing changed"),
        ("ship" | "deploy", RunResult::Failure) => format!("deploy{to} failed"),
        ("ship" | "deploy", RunResult::Cancelled) => format!("deploy{to} cancelled"),
        ("rollback", RunResult::Success) => format!("rolled back{on}"),
        (command, RunResult::Success | RunResult::Unchanged) => format!("{command}{of}"),
        (command, result) => format!("{command}{of}: {}", result.as_str()),
    };
    format!("## {} {what}\n\n", report.result.icon())
}

/// The step summary, in markdown, well under GitHub's 1 MiB limit.
pub fn render_summary(report: &Report) -> String {
    let mut out = title(report);
    let rows = rows(report);
    if !rows.is_empty() {
        out.push_str("| what | value |\n|---|---|\n");
        for (name, value) in rows {
            out.push_str(&format!("| {name} | {value} |\n"));
        }
    }
    references(&mut out, report);
    for line in &report.lines {
        out.push_str(&format!("\n{}\n", escape(line)));
    }
    if let Some(failure) = &report.failure {
        let failure = failure.replace(LOGS_ABOVE, logs_here(report));
        out.push_str(&format!("\n### What failed\n\n{}\n", escape(&failure)));
        if let Some(serving) = &report.serving {
            out.push_str(&format!("\n**Serving now:** {}\n", escape(serving)));
        }
        if report.exit_code == Some(2) {
            out.push_str("\nNothing on the server was touched.\n");
        }
        details(
            &mut out,
            "last log lines of the new container",
            &report.logs,
        );
    }
    if let Some(old) = report.rollback_target() {
        let previous = report
            .previous_image
            .as_deref()
            .filter(|image| !image.is_empty())
            .map(|image| format!(" ({})", short_image(image)))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nTo send traffic back to **{old}**{previous}: run this action with `command: rollback`.\n"
        ));
    }
    details(&mut out, "server commands a deploy would run", &report.plan);
    if !report.phases.is_empty() {
        out.push_str("\n### Time per phase\n\n| phase | seconds |\n|---|--:|\n");
        for (phase, seconds) in &report.phases {
            let phase = escape(&shorten_digests(phase));
            out.push_str(&format!("| {phase} | {} |\n", seconds_cell(*seconds)));
        }
    }
    for notice in &report.notices {
        out.push_str(&format!("\n> {}\n", escape(notice)));
    }
    if let Some(url) = &report.run_url {
        out.push_str(&format!("\n[Run log]({url})\n"));
    }
    out
}

/// A phase's time; one under 5 ms (it only decided, or only used what an earlier round trip
/// read) says so rather than showing a zero, which would look like no measurement.
fn seconds_cell(seconds: f64) -> String {
    if seconds < 0.005 {
        "< 0.01".to_owned()
    } else {
        format!("{seconds:.2}")
    }
}

/// The engine's advice after a failed health check or bake: right in the log, where the new
/// color's last lines come just before it; in the summary they are in a block below.
const LOGS_ABOVE: &str = "see its log lines above";

fn logs_here(report: &Report) -> &'static str {
    if report.logs.is_empty() {
        "see its log lines in the run log"
    } else {
        "see its last log lines below"
    }
}

/// The full image references, under the table: a 64-hex digest in a cell would stretch it.
fn references(out: &mut String, report: &Report) {
    let full = |image: Option<&str>| image.filter(|i| i.contains('@')).map(str::to_owned);
    let previous = full(report.previous_image.as_deref()).filter(|_| report.old.is_some());
    let lines: Vec<String> = [
        ("image", full(report.image.as_deref())),
        ("previous image", previous),
    ]
    .into_iter()
    .filter_map(|(name, image)| Some(format!("{name}: `{}`", image?)))
    .collect();
    if !lines.is_empty() {
        out.push_str(&format!("\n<sub>{}</sub>\n", lines.join("<br>")));
    }
}

/// The table rows that have a value.
fn rows(report: &Report) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if !report.commit.is_empty() {
        let short = &report.commit[..report.commit.len().min(7)];
        let commit = match &report.repository_url {
            Some(url) => format!("[`{short}`]({url}/commit/{})", report.commit),
            None => format!("`{short}`"),
        };
        rows.push(("commit", commit));
    }
    if let Some(tag) = report.tag.as_deref().filter(|t| !t.is_empty()) {
        rows.push(("tag", format!("`{tag}`")));
    }
    if let Some(digest) = report.digest() {
        rows.push(("digest", format!("`{}`", short_digest(digest))));
    }
    match (report.old, report.new) {
        (_, Some(new)) if report.result == RunResult::Unchanged => {
            rows.push(("serving", format!("**{new}**")));
        }
        (Some(old), Some(new)) => rows.push(("colors", format!("**{old}** → **{new}**"))),
        (None, Some(new)) => rows.push(("colors", format!("none → **{new}**"))),
        _ => {}
    }
    if report.new.is_none() {
        if let Some(serving) = report.serving_color {
            rows.push(("serving", format!("**{serving}**")));
        }
    }
    if let Some(previous) = report.previous_image.as_deref().filter(|p| !p.is_empty()) {
        if report.old.is_some() {
            rows.push(("previous image", short_image(previous)));
        }
    }
    if let Some(attempts) = report.health_attempts.filter(|n| *n > 0) {
        rows.push(("health probes", attempts.to_string()));
    }
    if let Some(impact) = &report.impact {
        // The count spans the whole deploy, and a failed one may never have switched.
        let span = match report.command.as_str() {
            "rollback" => "during the rollback",
            _ => "during the deploy",
        };
        rows.push(("impact", escape(&impact.describe_over(span))));
    }
    if let Some(bake) = &report.bake {
        rows.push(("bake", escape(bake)));
    }
    if report.total_seconds > 0.0 {
        rows.push(("total time", format!("{:.1} s", report.total_seconds)));
    }
    rows
}

/// A collapsed block of lines, when there are any.
fn details(out: &mut String, summary: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    out.push_str(&format!("\n<details><summary>{summary}</summary>\n\n```\n"));
    for line in lines.iter().take(60) {
        out.push_str(&truncate(line, 300).replace("```", "'''"));
        out.push('\n');
    }
    out.push_str("```\n</details>\n");
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Keeps text from breaking the markdown around it.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Report {
        Report {
            command: "ship".into(),
            environment: "prod".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            repository_url: Some("https://github.com/o/r".into()),
            tag: Some("prod-0123456".into()),
            run_url: Some("https://github.com/o/r/actions/runs/42".into()),
            total_seconds: 47.25,
            phases: vec![
                ("log in to r.io".into(), 0.4),
                ("build the image".into(), 31.2),
                ("push to r.io".into(), 4.0),
            ],
            ..Report::default()
        }
    }

    fn deployed() -> Report {
        let mut report = base();
        report.image = Some(format!("r.io/api@sha256:{}", "a".repeat(64)));
        report.previous_image = Some(format!("r.io/api@sha256:{}", "b".repeat(64)));
        report.old = Some(Color::Blue);
        report.new = Some(Color::Green);
        report.serving_color = Some(Color::Green);
        report.health_attempts = Some(7);
        report.phases.extend([
            ("wait for health".into(), 6.25),
            ("switch traffic to green".into(), 0.3),
        ]);
        report
    }

    #[test]
    fn summary_of_a_success() {
        let report = deployed();
        let summary = render_summary(&report);
        insta::assert_snapshot!(summary);
        assert_eq!(report.digest().unwrap().len(), 71);
    }

    #[test]
    fn summary_of_a_baked_deploy_shows_the_probe_counts() {
        let mut report = deployed();
        report.bake = Some(
            "baked 3.0s: 0 failed of 29 probe requests through nginx (bake_max_error_rate 1%)"
                .into(),
        );
        let summary = render_summary(&report);
        assert!(
            summary.contains("| bake | baked 3.0s: 0 failed of 29 probe requests through nginx"),
            "{summary}"
        );
    }

    fn impact(blue: u32, green: u32) -> Impact {
        let mut impact = Impact::default();
        for _ in 0..blue {
            impact.add(Some(Color::Blue), Some(200));
        }
        for _ in 0..green {
            impact.add(Some(Color::Green), Some(200));
        }
        impact
    }

    #[test]
    fn summary_shows_what_the_probe_requests_got_during_the_deploy() {
        let mut report = deployed();
        report.impact = Some(impact(61, 82));
        let summary = render_summary(&report);
        assert!(
            summary.contains(
                "| impact | 0 failed of 143 probe requests through nginx during the deploy \
                 (blue 61, green 82) |"
            ),
            "{summary}"
        );
    }

    /// A deploy that failed before its switch never had one to count "during".
    #[test]
    fn a_failed_deploy_counts_its_probes_without_claiming_a_switch() {
        let report = Report {
            result: RunResult::Failure,
            failure: Some("health check of green failed".into()),
            impact: Some(impact(12, 0)),
            ..base()
        };
        let summary = render_summary(&report);
        assert!(
            summary.contains("| impact | 0 failed of 12 probe requests through nginx during the deploy (blue 12) |"),
            "{summary}"
        );
        assert!(!summary.contains("switch"), "{summary}");
    }

    /// No table cell holds a whole digest; the full references sit under the table.
    #[test]
    fn digests_in_tables_are_short_and_the_full_references_sit_below() {
        let mut report = deployed();
        let image = report.image.clone().unwrap();
        report.phases.insert(2, (format!("pull {image}"), 1.5));
        let summary = render_summary(&report);
        let long = format!("sha256:{}", "a".repeat(13));
        for row in summary.lines().filter(|line| line.starts_with('|')) {
            assert!(!row.contains(&long), "{row}");
        }
        assert!(
            summary.contains(&format!(
                "| pull r.io/api@sha256:{} | 1.50 |",
                "a".repeat(12)
            )),
            "{summary}"
        );
        assert!(summary.contains(&format!("image: `{image}`")), "{summary}");
        assert!(!summary.contains("| |"), "a blank header cell: {summary}");
    }

    #[test]
    fn a_phase_under_5ms_says_so_instead_of_showing_zero() {
        assert_eq!(seconds_cell(0.000_02), "< 0.01");
        assert_eq!(seconds_cell(0.004), "< 0.01");
        assert_eq!(seconds_cell(0.26), "0.26");
        assert_eq!(seconds_cell(31.2), "31.20");
    }

    #[test]
    fn digests_are_cut_wherever_they_are_in_a_text() {
        let long = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(
            shorten_digests(&format!("pull r@{long} then {long}; sha256:12")),
            "pull r@sha256:0123456789ab then sha256:0123456789ab; sha256:12"
        );
        assert_eq!(shorten_digests("start green"), "start green");
    }

    #[test]
    fn summary_of_a_health_failure_gives_no_rollback_advice() {
        let report = Report {
            result: RunResult::Failure,
            failure: Some(
                "health check of green failed after 60.0s: not healthy | HTTP 503; blue still \
                 serves traffic; see its log lines above, fix the app and deploy again"
                    .into(),
            ),
            serving: Some("blue still serves traffic".into()),
            serving_color: Some(Color::Blue),
            exit_code: Some(1),
            old: None,
            logs: vec![
                "Started App in 3.2 seconds".into(),
                "ERROR <db> connection refused".into(),
            ],
            ..base()
        };
        let summary = render_summary(&report);
        insta::assert_snapshot!(summary);
        assert!(!summary.contains("rollback"), "{summary}");
        assert!(!summary.replace("```", "").contains("``"), "{summary}");
        // The log lines are in the block below, not above.
        assert!(
            summary.contains("see its last log lines below, fix"),
            "{summary}"
        );
        assert!(!summary.contains("above"), "{summary}");
    }

    #[test]
    fn summary_of_a_config_error_says_nothing_was_touched() {
        let report = Report {
            result: RunResult::Failure,
            failure: Some("invalid settings (host): host: required".into()),
            exit_code: Some(2),
            tag: None,
            phases: Vec::new(),
            total_seconds: 0.01,
            ..base()
        };
        let summary = render_summary(&report);
        insta::assert_snapshot!(summary);
        assert!(!summary.contains("rollback") && !summary.contains("| tag"));
    }

    #[test]
    fn summary_of_a_cancelled_run() {
        let report = Report {
            result: RunResult::Cancelled,
            failure: Some("cancelled by a signal; blue still serves traffic".into()),
            serving: Some("blue still serves traffic".into()),
            serving_color: Some(Color::Blue),
            exit_code: Some(1),
            ..base()
        };
        insta::assert_snapshot!(render_summary(&report));
    }

    #[test]
    fn summary_of_an_unchanged_run() {
        let report = Report {
            result: RunResult::Unchanged,
            old: None,
            previous_image: None,
            health_attempts: None,
            ..deployed()
        };
        let summary = render_summary(&report);
        insta::assert_snapshot!(summary);
        assert!(!summary.contains("rollback"));
    }
}
