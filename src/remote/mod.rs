//! The seam to the server: [`Host`] runs [`ServerCommand`]s and opens port forwards.
//! [`ssh::SshHost`] is the real one (one multiplexed OpenSSH connection per run).

pub mod batch;
pub mod hostkey;
pub mod http;
pub mod private_dir;
pub mod ssh;

use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::server::ServerCommand;

#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr (or stdout when stderr is empty), for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// A command that keeps running while the caller reads its output line by line and writes
/// to its stdin, which stays open until this value is dropped or [`Running::finish`] is called.
pub struct Running {
    pub stdout: Box<dyn AsyncBufRead + Unpin + Send>,
    pub stdin: Box<dyn AsyncWrite + Unpin + Send>,
}

impl Running {
    /// Closes stdin: the remote side sees EOF and ends.
    pub fn finish(self) {
        drop(self);
    }
}

pub trait Host {
    /// Runs a command to completion, stopped on the server after [`Host::deadline`] (then an
    /// error). A non-zero exit is not an error here: callers decide.
    fn run(
        &self,
        command: &ServerCommand,
    ) -> impl std::future::Future<Output = Result<Output>> + Send;

    /// Runs `commands` one after another in one round trip ([`batch`]), up to the first
    /// that exits non-zero (its result is the last one returned). `Err`: the connection
    /// failed, and any of the commands may have run.
    fn run_batch(
        &self,
        commands: &[ServerCommand],
    ) -> impl std::future::Future<Output = Result<Vec<batch::Ran>>> + Send;

    /// Starts a long-running command (the lock holder), which runs `batch` at its point of
    /// choice (every command of it, in [`batch::Mode::All`]) and prints their frames.
    fn spawn(
        &self,
        command: &ServerCommand,
        batch: &[ServerCommand],
    ) -> impl std::future::Future<Output = Result<Running>> + Send;

    /// An HTTP GET as the server would send it (through a port forward). `Err` is a short
    /// reason ("connection refused"); a reply with any status is `Ok`.
    fn http_get(
        &self,
        request: &http::HttpGet,
    ) -> impl std::future::Future<Output = Result<http::HttpReply, String>> + Send;

    /// Whether privileged commands get `sudo -n`.
    fn sudo(&self) -> bool;

    /// How many commands ran so far (each one SSH round trip).
    fn round_trips(&self) -> usize;
}

/// Runs a command and turns a non-zero exit into an error carrying purpose, command and stderr.
pub async fn run_ok(host: &impl Host, command: &ServerCommand) -> Result<Output> {
    let output = host.run(command).await?;
    succeeded(command, output, host.sudo())
}

/// `output` when `command` exited 0, else the error [`run_ok`] returns.
pub fn succeeded(command: &ServerCommand, output: Output, sudo: bool) -> Result<Output> {
    if !output.success() {
        // The cause first: the command line (often long) comes last.
        let said = output.tail(5);
        let said = if said.trim().is_empty() {
            "it printed nothing".to_owned()
        } else {
            said
        };
        anyhow::bail!(
            "{} failed ({}): {said} (the command was `{}`)",
            command.purpose,
            exit_text(output.code),
            command.render(sudo),
        );
    }
    Ok(output)
}

pub fn exit_text(code: Option<i32>) -> String {
    match code {
        // What coreutils `timeout` returns when it had to stop the command.
        Some(124) | Some(137) => "did not finish within command_timeout".to_owned(),
        Some(code) => format!("exit {code}"),
        None => "killed by a signal or connection lost".to_owned(),
    }
}

/// The argv that enforces the deadline on the server: the command is stopped there (TERM, then
/// KILL 5 s later) even when the connection is gone, so a hung `docker` or `nginx -t` never
/// holds the deploy forever.
pub fn with_deadline(argv: Vec<String>, deadline: Duration) -> Vec<String> {
    let seconds = deadline.as_secs().max(1).to_string();
    let mut wrapped = vec!["timeout".into(), "-k".into(), "5".into(), seconds];
    wrapped.extend(argv);
    wrapped
}

/// The error of a command that ran past its deadline on the client side (the connection hung).
pub fn deadline_error(command: &ServerCommand, deadline: Duration) -> anyhow::Error {
    anyhow::anyhow!(
        "{} did not finish within command_timeout ({}s)",
        command.purpose,
        deadline.as_secs()
    )
}
