//! What one action run did, gathered as it goes; rendered as the step summary and the outputs.

use crate::color::Color;

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub environment: String,
    pub commit: String,
    pub image: Option<String>,
    pub old: Option<Color>,
    pub new: Option<Color>,
    /// (phase, seconds) in the order they ran.
    pub phases: Vec<(&'static str, f64)>,
    pub health_attempts: Option<u32>,
    pub round_trips: Option<usize>,
    pub failure: Option<String>,
    pub serving: Option<String>,
    pub logs: Vec<String>,
    pub notices: Vec<String>,
    pub run_url: Option<String>,
    pub app_name: String,
}

impl Report {
    pub fn digest(&self) -> Option<&str> {
        self.image
            .as_deref()
            .and_then(|image| image.split_once('@'))
            .map(|(_, digest)| digest)
    }
}

/// The step summary, in markdown, well under GitHub's 1 MiB limit.
pub fn render_summary(report: &Report) -> String {
    let mut out = String::new();
    let ok = report.failure.is_none();
    let title = if ok {
        "✅ bluegreen deploy succeeded"
    } else {
        "❌ bluegreen deploy failed"
    };
    out.push_str(&format!("## {title}\n\n"));
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!("| environment | `{}` |\n", report.environment));
    out.push_str(&format!("| commit | `{}` |\n", short(&report.commit)));
    if let Some(image) = &report.image {
        out.push_str(&format!("| image | `{image}` |\n"));
    }
    let color = |c: Option<Color>| c.map_or("none".to_owned(), |c| format!("**{c}**"));
    if ok {
        out.push_str(&format!(
            "| colors | {} → {} |\n",
            color(report.old),
            color(report.new)
        ));
    }
    if let Some(attempts) = report.health_attempts {
        out.push_str(&format!("| health probes | {attempts} |\n"));
    }
    if let Some(trips) = report.round_trips {
        out.push_str(&format!("| SSH round trips | {trips} |\n"));
    }
    out.push_str(&format!(
        "| result | {} |\n",
        if ok { "success" } else { "failure" }
    ));
    if let Some(failure) = &report.failure {
        out.push_str(&format!("\n### What failed\n\n{}\n", escape(failure)));
        if let Some(serving) = &report.serving {
            out.push_str(&format!("\n**Serving now:** {serving}\n"));
        }
        if !report.logs.is_empty() {
            out.push_str(
                "\n<details><summary>last log lines of the new container</summary>\n\n```\n",
            );
            for line in report.logs.iter().take(40) {
                out.push_str(&truncate(line, 300));
                out.push('\n');
            }
            out.push_str("```\n</details>\n");
        }
        out.push_str(&format!(
            "\nTo send traffic back by hand: `bluegreen rollback` (with the same settings; app `{}`).\n",
            report.app_name
        ));
    }
    if !report.phases.is_empty() {
        out.push_str("\n### Time per phase\n\n| phase | seconds |\n|---|---|\n");
        for (phase, seconds) in &report.phases {
            out.push_str(&format!("| {phase} | {seconds:.2} |\n"));
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

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
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
            environment: "prod".into(),
            commit: "0123456789abcdef0123".into(),
            image: Some(format!("myorg/api@sha256:{}", "a".repeat(64))),
            app_name: "api".into(),
            run_url: Some("https://github.com/o/r/actions/runs/42".into()),
            ..Report::default()
        }
    }

    #[test]
    fn summary_of_a_success() {
        let report = Report {
            old: Some(Color::Blue),
            new: Some(Color::Green),
            phases: vec![
                ("lock wait", 0.1),
                ("build", 31.2),
                ("push", 4.0),
                ("pull", 1.5),
                ("health", 6.25),
                ("switch", 0.3),
                ("drain", 1.0),
            ],
            health_attempts: Some(7),
            round_trips: Some(12),
            ..base()
        };
        insta::assert_snapshot!(render_summary(&report));
        assert_eq!(report.digest().unwrap().len(), 71);
    }

    #[test]
    fn summary_of_a_failure() {
        let report = Report {
            failure: Some(
                "health check of green failed after 60.0s: not healthy | HTTP 503".into(),
            ),
            serving: Some("blue still serves traffic".into()),
            logs: vec![
                "Started App in 3.2 seconds".into(),
                "ERROR <db> connection refused".into(),
            ],
            phases: vec![("lock wait", 0.0), ("build", 20.0)],
            ..base()
        };
        insta::assert_snapshot!(render_summary(&report));
    }
}
