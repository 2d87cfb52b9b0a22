//! The seam to the server: [`Host`] runs [`ServerCommand`]s and opens port forwards.
//! [`ssh::SshHost`] is the real one (one multiplexed OpenSSH connection per run).

pub mod hostkey;
pub mod ssh;

use std::net::SocketAddr;

use anyhow::Result;
use tokio::io::AsyncBufRead;

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

/// A command that keeps running while the caller reads its output line by line; its stdin
/// stays open until this value is dropped or [`Running::finish`] is called.
pub struct Running {
    pub stdout: Box<dyn AsyncBufRead + Unpin + Send>,
    pub(crate) finish: Box<dyn FnOnce() + Send>,
}

impl Running {
    /// Closes stdin: the remote side sees EOF and ends.
    pub fn finish(self) {
        (self.finish)();
    }
}

pub trait Host {
    /// Runs a command to completion. A non-zero exit is not an error here: callers decide.
    fn run(
        &self,
        command: &ServerCommand,
    ) -> impl std::future::Future<Output = Result<Output>> + Send;

    /// Starts a long-running command (the lock holder).
    fn spawn(
        &self,
        command: &ServerCommand,
    ) -> impl std::future::Future<Output = Result<Running>> + Send;

    /// A local address whose connections reach `host:port` as seen from the server.
    fn forward(
        &self,
        host: &str,
        port: u16,
    ) -> impl std::future::Future<Output = Result<SocketAddr>> + Send;

    /// Whether privileged commands get `sudo -n`.
    fn sudo(&self) -> bool;

    /// How many commands ran so far (each one SSH round trip).
    fn round_trips(&self) -> usize;
}

/// Runs a command and turns a non-zero exit into an error carrying purpose, command and stderr.
pub async fn run_ok(host: &impl Host, command: &ServerCommand) -> Result<Output> {
    let output = host.run(command).await?;
    if !output.success() {
        anyhow::bail!(
            "{} failed ({}): `{}`: {}",
            command.purpose,
            exit_text(output.code),
            command.render(host.sudo()),
            output.tail(5)
        );
    }
    Ok(output)
}

pub fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal or connection lost".to_owned(),
    }
}
