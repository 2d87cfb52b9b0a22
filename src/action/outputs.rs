//! `GITHUB_OUTPUT`: `name<<DELIMITER` … `DELIMITER` for every value, so multi-line values and
//! values containing `=` can never be misread.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::report::{Report, RunResult};

/// Every output, on every exit: empty when not known. `color`, `previous_color`, `image` and
/// `digest` describe what this run left serving, so a failed run leaves them empty.
pub fn values(report: &Report) -> Vec<(&'static str, String)> {
    let color = |c: Option<crate::color::Color>| c.map(|c| c.to_string()).unwrap_or_default();
    let served = matches!(report.result, RunResult::Success | RunResult::Unchanged);
    let known = |value: Option<String>| value.filter(|_| served).unwrap_or_default();
    vec![
        ("result", report.result.as_str().to_owned()),
        ("serving_color", color(report.serving_color)),
        ("color", known(report.new.map(|c| c.to_string()))),
        ("previous_color", known(report.old.map(|c| c.to_string()))),
        ("image", known(report.image.clone())),
        ("digest", known(report.digest().map(str::to_owned))),
        ("sha", report.commit.clone()),
    ]
}

pub fn render(outputs: &[(&str, String)], delimiter: &str) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    text
}

/// A delimiter that occurs in none of the values.
pub fn delimiter(outputs: &[(&str, String)]) -> String {
    let mut n = std::process::id() as u64 ^ 0x5bd1e995;
    loop {
        let candidate = format!("ghadelimiter_{n:x}");
        if outputs.iter().all(|(_, value)| !value.contains(&candidate)) {
            return candidate;
        }
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
}

pub fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::Color;

    #[test]
    fn a_failure_writes_every_output_and_only_what_is_true() {
        let report = Report {
            result: RunResult::Failure,
            commit: "abc".into(),
            image: Some("r/a@sha256:1".into()),
            new: Some(Color::Green),
            serving_color: Some(Color::Blue),
            ..Report::default()
        };
        let values = values(&report);
        assert_eq!(
            values,
            [
                ("result", "failure".to_owned()),
                ("serving_color", "blue".to_owned()),
                ("color", String::new()),
                ("previous_color", String::new()),
                ("image", String::new()),
                ("digest", String::new()),
                ("sha", "abc".to_owned()),
            ]
        );
    }

    #[test]
    fn heredoc_outputs() {
        let outputs = [("color", "green".to_owned()), ("note", "a\nb=c".to_owned())];
        assert_eq!(
            render(&outputs, "EOF1"),
            "color<<EOF1\ngreen\nEOF1\nnote<<EOF1\na\nb=c\nEOF1\n"
        );
        // A value that contains the would-be delimiter gets another one.
        let plain = [("x", "v".to_owned())];
        let first_choice = delimiter(&plain);
        let tricky = [("x", format!("a\n{first_choice}\nb"))];
        let chosen = delimiter(&tricky);
        assert_ne!(chosen, first_choice);
        assert!(!tricky[0].1.contains(&chosen));
    }
}
