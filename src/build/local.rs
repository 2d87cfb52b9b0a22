//! Local commands (the jar build, docker build/login/push) as values, and their runner, which
//! streams output to the log (terminal escapes stripped) and keeps the tail for error messages.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::printer::Printer;
use crate::server::{ServerCommand, Stdin};

#[derive(Clone, Debug, PartialEq)]
pub struct LocalCommand {
    pub command: ServerCommand,
    pub env: Vec<(String, String)>,
    pub dir: Option<PathBuf>,
}

impl LocalCommand {
    pub fn new(purpose: impl Into<String>, argv: &[&str]) -> Self {
        Self {
            command: ServerCommand::new(purpose, argv),
            env: Vec::new(),
            dir: None,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.command = self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.command = self.command.stdin(stdin);
        self
    }

    pub fn render(&self) -> String {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::server::command::quote(v)))
            .collect();
        let line = self.command.render(false);
        if env.is_empty() {
            line
        } else {
            format!("{} {line}", env.join(" "))
        }
    }
}

/// Runs to completion, streaming each output line to the log; returns stdout.
pub async fn run(printer: &Printer, local: &LocalCommand) -> Result<String> {
    let argv = &local.command.argv;
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(local.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &local.dir {
        command.current_dir(dir);
    }
    let stdin_bytes = match &local.command.stdin {
        Stdin::None => None,
        Stdin::Text(text) => Some(text.as_bytes().to_vec()),
        Stdin::Secret(secret) => Some(secret.expose().as_bytes().to_vec()),
        Stdin::Bytes(bytes) => Some(bytes.clone()),
    };
    command.stdin(if stdin_bytes.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let purpose = &local.command.purpose;
    let mut child = command
        .spawn()
        .with_context(|| format!("{purpose}: cannot run `{}`", argv[0]))?;
    if let (Some(bytes), Some(mut stdin)) = (stdin_bytes, child.stdin.take()) {
        stdin.write_all(&bytes).await?;
        drop(stdin);
    }
    let mut stdout_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut stdout, mut tail) = (String::new(), Vec::<String>::new());
    let (mut out_open, mut err_open) = (true, true);
    let commands_stopped = printer.stop_commands();
    while out_open || err_open {
        let line = tokio::select! {
            line = stdout_lines.next_line(), if out_open => match line? { Some(l) => { stdout.push_str(&l); stdout.push('\n'); Some(l) } None => { out_open = false; None } },
            line = stderr_lines.next_line(), if err_open => match line? { Some(l) => Some(l), None => { err_open = false; None } },
        };
        if let Some(line) = line.map(|l| plain(&l)).filter(|l| !l.trim().is_empty()) {
            printer.quoted(&line);
            tail.push(line);
            if tail.len() > TAIL_LINES {
                tail.remove(0);
            }
        }
    }
    drop(commands_stopped);
    let status = child.wait().await?;
    if !status.success() {
        return Err(Failed {
            purpose: purpose.clone(),
            status: status
                .code()
                .map_or_else(|| status.to_string(), |code| format!("exit {code}")),
            tail,
        }
        .into());
    }
    Ok(stdout)
}

/// How many of a failed command's last output lines are kept and shown again.
pub const TAIL_LINES: usize = 15;

/// A local command that exited non-zero: one line naming it, its exit and the likely cause;
/// the last lines of its output (plain text) for [`Failed::show_tail`].
#[derive(Debug)]
pub struct Failed {
    pub purpose: String,
    pub status: String,
    pub tail: Vec<String>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed ({})", self.purpose, self.status)?;
        match self.cause() {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Failed {}

impl Failed {
    /// The line most likely to say why: the one after Gradle's `* What went wrong:`, else the
    /// last line with `error:` (javac, buildx), else the last line mentioning an error, else
    /// the last line (at most 200 characters).
    pub fn cause(&self) -> Option<String> {
        let lines: Vec<&str> = self.tail.iter().map(|l| l.trim()).collect();
        let after_gradle = lines
            .iter()
            .position(|l| *l == "* What went wrong:")
            .and_then(|at| lines.get(at + 1));
        let last_with = |word: &str| {
            lines
                .iter()
                .rev()
                .find(|l| l.to_ascii_lowercase().contains(word))
        };
        let cause = after_gradle
            .or_else(|| last_with("error:"))
            .or_else(|| last_with("error"))
            .or(lines.last())?;
        Some(cause.chars().take(200).collect())
    }

    /// Prints the last lines of the output again, below the phase, where a reader of a
    /// collapsed CI log or a long terminal scroll sees them next to the error.
    pub fn show_tail(&self, printer: &Printer) {
        if self.tail.is_empty() {
            return;
        }
        printer.end_phase();
        printer.info(&format!(
            "the last {} lines of the output of `{}`:",
            self.tail.len(),
            self.purpose
        ));
        for line in &self.tail {
            printer.quoted(line);
        }
    }
}

/// `line` as plain text: terminal escape sequences (colours, cursor moves, titles) removed,
/// and of a line redrawn with carriage returns only what was drawn last.
pub fn plain(line: &str) -> String {
    let line = line
        .trim_end_matches('\r')
        .rsplit('\r')
        .next()
        .unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if !c.is_control() || c == '\t' {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC (a window title, a link): up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            // A character set choice (`ESC ( B`, tput's sgr0) names one more character.
            Some('(' | ')') => {
                chars.next();
            }
            // Any other escape is two characters.
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped_and_redrawn_lines_keep_their_last_drawing() {
        assert_eq!(
            plain("\u{1b}[1m\u{1b}[31mFAILURE:\u{1b}[0m Build failed"),
            "FAILURE: Build failed"
        );
        assert_eq!(plain("\u{1b}]0;title\u{7}ok"), "ok");
        assert_eq!(
            plain("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        assert_eq!(plain("10%\r50%\r100% done\r"), "100% done");
        assert_eq!(plain("\u{1b}[2K\u{1b}[1Gstep 3/4"), "step 3/4");
        assert_eq!(plain("\u{1b}[1mbold\u{1b}(B\u{1b}[m plain"), "bold plain");
    }

    #[test]
    fn the_cause_is_gradles_what_went_wrong_or_the_last_error_line() {
        let failed = |tail: &[&str]| Failed {
            purpose: "build the jar (gradle)".into(),
            status: "exit 1".into(),
            tail: tail.iter().map(|l| l.to_string()).collect(),
        };
        let gradle = failed(&[
            "FAILURE: Build failed with an exception.",
            "* What went wrong:",
            "Execution failed for task ':compileJava'.",
            "* Try:",
            "BUILD FAILED in 2s",
        ]);
        assert_eq!(
            gradle.to_string(),
            "build the jar (gradle) failed (exit 1): Execution failed for task ':compileJava'."
        );
        let javac = failed(&[
            "src/App.java:1: error: class, interface expected",
            "1 error",
            "done",
        ]);
        assert_eq!(
            javac.cause().as_deref(),
            Some("src/App.java:1: error: class, interface expected")
        );
        assert_eq!(
            failed(&[]).to_string(),
            "build the jar (gradle) failed (exit 1)"
        );
    }
}
