//! Local commands (the jar build, docker build/login/push) as values, and their runner, which
//! streams output to the log and keeps the tail for error messages.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
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
        if let Some(line) = line {
            printer.quoted(&line);
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    drop(commands_stopped);
    let status = child.wait().await?;
    if !status.success() {
        bail!(
            "{purpose} failed ({status}): `{}`; last output: {}",
            local.render(),
            tail.join(" / ")
        );
    }
    Ok(stdout)
}
