//! All human output goes through here, to stderr (stdout is for machine output, see
//! [`Printer::stdout`]). Chosen once: spinners on a terminal, plain lines otherwise,
//! `::group::` per phase inside GitHub Actions. Every line passes the [`Redactor`]: secrets
//! become `***`, and no text but our own deliberate workflow commands can start one.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::phases::PhaseClock;
use crate::redact::{self, Redactor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Terminal,
    Plain,
    Actions,
}

pub struct Printer {
    style: Style,
    redactor: Redactor,
    spinner: Mutex<Option<ProgressBar>>,
    clock: Mutex<PhaseClock>,
    /// A `::group::` is open (Actions): only then does `::endgroup::` have one to close.
    group_open: AtomicBool,
}

/// While alive (in Actions), the runner ignores workflow commands: streamed build output and
/// container logs cannot issue any, whatever they print. Ends with the token on drop.
pub struct CommandsStopped<'a> {
    printer: &'a Printer,
    token: Option<String>,
}

impl Drop for CommandsStopped<'_> {
    fn drop(&mut self) {
        if let Some(token) = &self.token {
            self.printer.raw(&format!("::{token}::"));
        }
    }
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
            redactor: Redactor::default(),
            spinner: Mutex::new(None),
            clock: Mutex::new(PhaseClock::default()),
            group_open: AtomicBool::new(false),
        }
    }

    /// The redactor every other way out of the process (summary, outputs, GitHub) uses too.
    pub fn redactor(&self) -> Redactor {
        self.redactor.clone()
    }

    /// Registers secrets; in Actions also tells the runner to mask them (before anything else),
    /// escaped so the runner registers exactly the value (it decodes `%25`, `%0D`, `%0A`).
    pub fn mask(&self, secrets: &[String]) {
        for secret in secrets.iter().filter(|s| !s.trim().is_empty()) {
            if self.style == Style::Actions {
                let lines = secret.lines().map(str::trim).filter(|l| !l.is_empty());
                for line in lines {
                    self.raw(&format!("::add-mask::{}", redact::escape_data(line)));
                }
            }
            self.redactor.add(secret);
        }
    }

    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Writes one line exactly as given (our own workflow commands only).
    fn raw(&self, text: &str) {
        self.finish_spinner();
        if cfg!(test) {
            // Unit tests: the test harness captures this and shows it only on a failure.
            eprintln!("{text}");
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ignore_closed_stderr = writeln!(err, "{text}");
    }

    /// Writes text that is not a workflow command: redacted, each physical line neutralized.
    fn line(&self, text: &str) {
        for line in self.redactor.untrusted_lines(text) {
            self.raw(&line);
        }
    }

    /// A workflow command of ours (`::warning::` …) whose data is redacted and escaped.
    fn command(&self, name: &str, data: &str) {
        let data = redact::escape_data(&self.redact(data));
        self.raw(&format!("::{name}::{data}"));
    }

    /// Starts a phase (ending the one before): a header line, or a collapsible group in Actions.
    pub fn phase(&self, name: &str) {
        self.end_phase();
        self.clock.lock().unwrap().start(name);
        match self.style {
            Style::Actions => {
                self.command("group", name);
                self.group_open.store(true, Ordering::SeqCst);
            }
            _ => self.line(&format!("==> {name}")),
        }
    }

    /// Ends the running phase, if any: its clock stops and its group (Actions) closes.
    pub fn end_phase(&self) {
        self.clock.lock().unwrap().stop();
        if self.group_open.swap(false, Ordering::SeqCst) {
            self.raw("::endgroup::");
        }
    }

    pub fn info(&self, text: &str) {
        for line in self.redactor.untrusted_lines(text) {
            self.raw(&format!("    {line}"));
        }
    }

    /// Lines another program wrote (build output, container logs, the server's lock holder):
    /// indented under a `|` so they read as quoted, never as ours.
    pub fn quoted(&self, text: &str) {
        for line in self.redactor.untrusted_lines(text) {
            self.raw(&format!("    | {line}"));
        }
    }

    /// Stops workflow command processing until the returned guard is dropped (Actions only).
    /// Print nothing of ours but plain lines while it lives.
    pub fn stop_commands(&self) -> CommandsStopped<'_> {
        let token = (self.style == Style::Actions).then(redact::random_token);
        if let Some(token) = &token {
            self.raw(&format!("::stop-commands::{token}"));
        }
        CommandsStopped {
            printer: self,
            token,
        }
    }

    /// Output on stdout (reference, status, plan): redacted, and unable to start a workflow
    /// command in the Actions log (each line neutralized like any text from outside).
    pub fn stdout(&self, text: &str) {
        let text = self.redact(text).replace("\r\n", "\n");
        let lines = text.split(['\n', '\r']).map(redact::neutralize_commands);
        self.stdout_lines(lines.collect());
    }

    /// JSON on stdout: redacted; `##[` (only possible inside a JSON string) is written
    /// `##\u005b`, the same text for a JSON reader and no command for the runner.
    pub fn stdout_json(&self, json: &str) {
        let json = self.redact(json);
        let lines = json.lines().map(|line| {
            let mut line = line.to_owned();
            while line.contains("##[") {
                line = line.replace("##[", "##\\u005b");
            }
            line
        });
        self.stdout_lines(lines.collect());
    }

    fn stdout_lines(&self, lines: Vec<String>) {
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ignore_closed_stdout = writeln!(out, "{line}");
        }
    }

    pub fn warn(&self, text: &str) {
        match self.style {
            Style::Actions => self.command("warning", text),
            _ => self.line(&format!("warning: {text}")),
        }
    }

    pub fn notice(&self, text: &str) {
        match self.style {
            Style::Actions => self.command("notice", text),
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
            Style::Actions => self.command("error", text),
            _ => self.line(&format!("error: {text}")),
        }
    }

    /// The running phase ran, in one batch, commands of later phases that took `took` on the
    /// server: that time counts for them (see [`PhaseClock`]).
    pub fn ran_ahead(&self, took: Duration) {
        self.clock.lock().unwrap().lend(took);
    }

    /// The running phase took the result of a command a batch ran earlier: its time counts here.
    pub fn ran_earlier(&self, took: Duration) {
        self.clock.lock().unwrap().repay(took);
    }

    /// The phases so far with their durations (the running one up to now), and the total time.
    pub fn timings(&self) -> (Vec<(String, Duration)>, Duration) {
        let clock = self.clock.lock().unwrap();
        (clock.phases(), clock.total())
    }

    /// Progress of a wait: a spinner on a terminal, one line per update elsewhere.
    pub fn progress(&self, text: &str) {
        if self.style == Style::Terminal {
            let text = self.redactor.untrusted(text);
            let mut spinner = self.spinner.lock().unwrap();
            let bar = spinner.get_or_insert_with(|| {
                let bar = ProgressBar::new_spinner();
                bar.set_style(ProgressStyle::with_template("    {spinner} {msg}").unwrap());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            bar.set_message(text);
        } else {
            self.info(text);
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
        assert_eq!(printer.redactor().redact("x tok3n-value"), "x ***");
    }

    /// In Actions a phase used to stop its own clock as it opened its group: every phase 0.00.
    #[test]
    fn a_phase_in_actions_runs_until_the_next_one_starts() {
        let printer = Printer::new(Style::Actions);
        printer.phase("build the image");
        std::thread::sleep(Duration::from_millis(30));
        printer.phase("push to r.io");
        std::thread::sleep(Duration::from_millis(20));
        printer.end_phase();
        let (phases, total) = printer.timings();
        let took: Vec<(&str, u128)> = phases
            .iter()
            .map(|(name, took)| (name.as_str(), took.as_millis()))
            .collect();
        assert!(
            took.len() == 2 && took[0].1 >= 30 && took[1].1 >= 20,
            "{took:?}"
        );
        assert!(total >= phases[0].1 + phases[1].1);
    }
}
