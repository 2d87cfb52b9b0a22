//! What one action run did, gathered as it goes; rendered as the step summary (here) and the
//! outputs (`outputs.rs`). Only what is known is shown: no empty rows, no empty backticks.

use crate::color::Color;

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
    pub impact: Option<String>,
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
    &digest[..digest.len().min("sha256:".len() + 12)]
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
        out.push_str("| | |\n|---|---|\n");
        for (name, value) in rows {
            out.push_str(&format!("| {name} | {value} |\n"));
        }
    }
    for line in &report.lines {
        out.push_str(&format!("\n{}\n", escape(line)));
    }
    if let Some(failure) = &report.failure {
        out.push_str(&format!("\n### What failed\n\n{}\n", escape(failure)));
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
        out.push_str("\n### Time per phase\n\n| phase | seconds |\n|---|---|\n");
        for (phase, seconds) in &report.phases {
            out.push_str(&format!("| {} | {seconds:.2} |\n", escape(phase)));
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
        rows.push(("impact", escape(impact)));
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

    #[test]
    fn summary_shows_what_the_probe_requests_got_during_the_switch() {
        let mut report = deployed();
        report.impact = Some(
            "0 failed of 143 probe requests through nginx during the switch (blue 61, green 82)"
                .into(),
        );
        let summary = render_summary(&report);
        assert!(
            summary.contains(
                "| impact | 0 failed of 143 probe requests through nginx during the switch \
                 (blue 61, green 82) |"
            ),
            "{summary}"
        );
    }

    #[test]
    fn summary_of_a_health_failure_gives_no_rollback_advice() {
        let report = Report {
            result: RunResult::Failure,
            failure: Some(
                "health check of green failed after 60.0s: not healthy | HTTP 503".into(),
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
