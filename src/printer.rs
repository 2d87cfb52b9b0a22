//! All human output goes through here, to stderr (stdout is for machine output). Chosen once:
//! spinners on a terminal, plain lines otherwise, `::group::` per phase inside GitHub Actions.
//! Every line is passed through the secret mask first.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::phases::PhaseClock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Terminal,
    Plain,
    Actions,
}

pub struct Printer {
    style: Style,
    secrets: Mutex<Vec<String>>,
    spinner: Mutex<Option<ProgressBar>>,
    clock: Mutex<PhaseClock>,
}

impl Printer {
    pub fn detect() -> Printer {
        let style = if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
            Style::Actions
        } else if std::io::stderr().is_terminal() {
            Style::Terminal
        } else {
            Style::Plain
        };
        Printer::new(style)
    }

    pub fn new(style: Style) -> Printer {
        Printer {
            style,
            secrets: Mutex::new(Vec::new()),
            spinner: Mutex::new(None),
            clock: Mutex::new(PhaseClock::default()),
        }
    }

    /// Registers secrets; in Actions also tells the runner to mask them (before anything else).
    pub fn mask(&self, secrets: &[String]) {
        let mut known = self.secrets.lock().unwrap();
        for secret in secrets.iter().filter(|s| !s.trim().is_empty()) {
            if self.style == Style::Actions {
                for line in secret.lines().filter(|l| !l.trim().is_empty()) {
                    eprintln!("::add-mask::{}", line.trim());
                }
            }
            known.push(secret.clone());
            known.extend(
                secret
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 8)
                    .map(str::to_owned),
            );
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.lock().unwrap().iter() {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }

    fn line(&self, text: &str) {
        self.finish_spinner();
        let text = self.redact(text);
        if cfg!(test) {
            // Unit tests: the test harness captures this and shows it only on a failure.
            eprintln!("{text}");
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ignore_closed_stderr = writeln!(err, "{text}");
    }

    /// Starts a phase: a header line, or a collapsible group in Actions.
    pub fn phase(&self, name: &str) {
        self.clock.lock().unwrap().start(name);
        match self.style {
            Style::Actions => {
                self.end_phase();
                self.line(&format!("::group::{name}"));
            }
            _ => self.line(&format!("==> {name}")),
        }
    }

    pub fn end_phase(&self) {
        self.clock.lock().unwrap().stop();
        if self.style == Style::Actions {
            self.line("::endgroup::");
        }
    }

    pub fn info(&self, text: &str) {
        self.line(&format!("    {text}"));
    }

    pub fn warn(&self, text: &str) {
        match self.style {
            Style::Actions => self.line(&format!("::warning::{}", self.redact(text))),
            _ => self.line(&format!("warning: {text}")),
        }
    }

    pub fn notice(&self, text: &str) {
        match self.style {
            Style::Actions => self.line(&format!("::notice::{}", self.redact(text))),
            _ => self.line(&format!("note: {text}")),
        }
    }

    /// The one line every failure ends with.
    pub fn error(&self, text: &str) {
        self.end_phase();
        let text = &text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        match self.style {
            Style::Actions => self.line(&format!("::error::{}", self.redact(text))),
            _ => self.line(&format!("error: {text}")),
        }
    }

    /// The phases so far with their durations (the running one up to now), and the total time.
    pub fn timings(&self) -> (Vec<(String, Duration)>, Duration) {
        let clock = self.clock.lock().unwrap();
        (clock.phases(), clock.total())
    }

    /// Progress of a wait: a spinner on a terminal, one line per update elsewhere.
    pub fn progress(&self, text: &str) {
        let text = self.redact(text);
        if self.style == Style::Terminal {
            let mut spinner = self.spinner.lock().unwrap();
            let bar = spinner.get_or_insert_with(|| {
                let bar = ProgressBar::new_spinner();
                bar.set_style(ProgressStyle::with_template("    {spinner} {msg}").unwrap());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            bar.set_message(text);
        } else {
            self.line(&format!("    {text}"));
        }
    }

    fn finish_spinner(&self) {
        if let Some(bar) = self.spinner.lock().unwrap().take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_registered_secrets_and_their_lines() {
        let printer = Printer::new(Style::Plain);
        printer.mask(&[
            "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----".into(),
            "tok3n-value".into(),
        ]);
        assert_eq!(printer.redact("token tok3n-value here"), "token *** here");
        assert_eq!(printer.redact("line AAAABBBBCCCCDDDD"), "line ***");
    }
}
