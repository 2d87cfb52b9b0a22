//! The real [`Host`]: one OpenSSH master connection (ControlMaster, native mux) for the whole
//! run, and nothing of it outlives the run:
//! - the master persists only 3 s after its last session (`ControlPersist=3s`); one idle
//!   session (`cat`) lives as long as this process, so when the process dies — even by
//!   SIGKILL — the session ends and the master exits a few seconds later;
//! - on every path the process can act on, dropping [`SshHost`] tells the master to exit
//!   (`ssh -O exit`), whoever still holds a clone of the session;
//! - the key lives in a private temp dir (0700, files 0600 from creation) and is deleted as
//!   soon as the master has authenticated.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use openssh::{ControlPersist, ForwardType, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use super::batch::{self, Ran};
use super::http::{self, HttpGet, HttpReply};
use super::private_dir::PrivateDir;
use super::{hostkey, Host, Output, Running};
use crate::failure::Failure;
use crate::server::{ServerCommand, Stdin};
use crate::settings::{Config, HostKeyCheck, KeySource};

/// How long the master stays after its last session: short, so a killed run leaves nothing.
const MASTER_PERSIST_SECS: usize = 3;

pub struct SshHost {
    session: Arc<Session>,
    /// The master's control socket, to tell it to exit however many clones of `session` exist.
    control_socket: PathBuf,
    /// The session that keeps the master alive for exactly as long as this process runs.
    /// Its task keeps the opened session as its result, dropped with this handle.
    _keepalive: tokio::task::JoinHandle<Result<openssh::Child<Arc<Session>>>>,
    sudo: bool,
    round_trips: AtomicUsize,
    deadline: Duration,
    /// One local forward per remote address, opened on first use.
    forwards: Mutex<HashMap<(String, u16), SocketAddr>>,
    // Dropped last: the known_hosts and config files and the control socket's directory.
    _secrets: PrivateDir,
}

impl SshHost {
    pub async fn connect(config: &Config) -> Result<SshHost> {
        let secrets = PrivateDir::create("ssh")?;
        let (key_path, key_is_ours) = match &config.key {
            KeySource::Content(key) => (secrets.write("key", key.expose())?, true),
            KeySource::File(path) => (path.clone(), false),
        };
        let (known_hosts, strictness) = match &config.host_key {
            HostKeyCheck::KnownHosts(text) => (text.clone(), KnownHosts::Strict),
            HostKeyCheck::Fingerprint(fingerprint) => (
                hostkey::pinned_known_hosts(&config.host, config.port, fingerprint).await?,
                KnownHosts::Strict,
            ),
            HostKeyCheck::AcceptNew => (String::new(), KnownHosts::Add),
        };
        let known_hosts_path = secrets.write("known_hosts", &known_hosts)?;
        let ssh_config = secrets.write(
            "config",
            &ssh_config_text(
                &known_hosts_path,
                &key_path,
                strictness_word(&config.host_key),
            ),
        )?;
        let mut builder = SessionBuilder::default();
        builder
            .user(config.username.clone())
            .port(config.port)
            .keyfile(&key_path)
            .config_file(&ssh_config)
            .known_hosts_check(strictness)
            .user_known_hosts_file(&known_hosts_path)
            .control_directory(secrets.path())
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(MASTER_PERSIST_SECS).expect("not zero"),
            ))
            .connect_timeout(std::time::Duration::from_secs(15))
            .server_alive_interval(std::time::Duration::from_secs(5));
        if let Some(jump) = &config.proxy_jump {
            // The jump connection reads the same config file: key, known_hosts, strictness.
            builder.jump_hosts([jump]);
        }
        let started = std::time::Instant::now();
        let connected = builder.connect_mux(&config.host).await;
        trace("connected in", started);
        if key_is_ours {
            // The master has authenticated (or failed to): the key is not needed again.
            let _already_gone_is_fine = std::fs::remove_file(&key_path);
        }
        let session = match connected {
            Ok(session) => Arc::new(session),
            Err(error) => return Err(explain_connect_error(error, config, &known_hosts_path).await),
        };
        let control_socket = session.control_socket().to_path_buf();
        // Opened beside the first commands (a session takes tens of ms); a master that cannot
        // open it cannot run commands either, and those say why.
        let keepalive = tokio::spawn(keep_master_alive(session.clone()));
        Ok(SshHost {
            session,
            control_socket,
            _keepalive: keepalive,
            sudo: config.sudo,
            round_trips: AtomicUsize::new(0),
            deadline: config.command_timeout,
            forwards: Mutex::new(HashMap::new()),
            _secrets: secrets,
        })
    }

    /// Ends the connection (also what dropping does; this reads better at the call site).
    pub async fn close(self) {
        drop(self);
    }

    fn command(&self, command: &ServerCommand) -> openssh::OwningCommand<Arc<Session>> {
        self.remote(command.final_argv(self.sudo))
    }

    fn remote(&self, argv: Vec<String>) -> openssh::OwningCommand<Arc<Session>> {
        let mut remote = Session::to_command(self.session.clone(), argv[0].clone());
        remote.args(&argv[1..]);
        remote
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        exit_master(&self.control_socket);
    }
}

/// With `SWAP_BENCH_TRACE_SSH` set, what took how long on stderr (the connection, each
/// command: the benchmark's breakdown of a deploy).
fn trace(what: &str, started: std::time::Instant) {
    if std::env::var_os("SWAP_BENCH_TRACE_SSH").is_some() {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        eprintln!("    ssh: {what} {ms:.0} ms");
    }
}

/// One idle remote session for the life of this process: its stdin is a pipe only this
/// process holds, so the session ends when the process ends, however it ends.
async fn keep_master_alive(session: Arc<Session>) -> Result<openssh::Child<Arc<Session>>> {
    let mut keepalive = Session::to_command(session, "cat");
    keepalive
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    keepalive
        .spawn()
        .await
        .context("opening the keep-alive session over SSH")
}

/// Tells the master to exit now (`ssh -O exit`); it closes its connection to the server.
/// Best effort: when the master is already gone there is nothing to do.
fn exit_master(control_socket: &Path) {
    let _best_effort = std::process::Command::new("ssh")
        .arg("-F")
        .arg("/dev/null")
        .arg("-S")
        .arg(control_socket)
        .args(["-O", "exit", "bluegreen-master"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Settings for every host of the connection, a `proxy_jump` bastion included (the builder's
/// own options reach only the server).
fn ssh_config_text(known_hosts: &Path, key: &Path, strict: &str) -> String {
    format!(
        "Host *\n  UserKnownHostsFile \"{}\"\n  GlobalKnownHostsFile /dev/null\n  IdentitiesOnly yes\n  \
         IdentityFile \"{}\"\n  StrictHostKeyChecking {strict}\n  \
         PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  LogLevel ERROR\n  ServerAliveCountMax 3\n",
        known_hosts.display(),
        key.display()
    )
}

fn strictness_word(check: &HostKeyCheck) -> &'static str {
    match check {
        HostKeyCheck::AcceptNew => "accept-new",
        HostKeyCheck::KnownHosts(_) | HostKeyCheck::Fingerprint(_) => "yes",
    }
}

async fn explain_connect_error(
    error: openssh::Error,
    config: &Config,
    known_hosts: &Path,
) -> anyhow::Error {
    let detail = format!("{:#}", anyhow::Error::new(error));
    let host_key_problem = [
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "No ED25519 host key",
        "host key for",
    ]
    .iter()
    .any(|needle| detail.contains(needle));
    // The bastion's own ssh reports to nobody: a refused bastion host key shows up here only
    // as the connection closing during the key exchange.
    let closed_in_kex = detail.contains("kex_exchange_identification")
        || detail.contains("Connection closed by remote host");
    if let Some(jump) = config
        .proxy_jump
        .as_ref()
        .filter(|_| host_key_problem || closed_in_kex)
    {
        return Failure::config(format!(
            "cannot get through the bastion {jump}: {}; nothing on the server was changed; \
             known_hosts must hold the bastion's key and the server's (get them with \
             `ssh-keyscan -p PORT HOST` for each), and the bastion must allow TCP forwarding",
            detail.lines().next().unwrap_or("").trim()
        ))
        .into();
    }
    if host_key_problem {
        return hostkey::mismatch_failure(&config.host, config.port, known_hosts)
            .await
            .into();
    }
    if detail.contains("Permission denied") {
        // The server refuses the key: bad input (exit 2), not a failed deploy.
        return Failure::config(format!(
            "the server refused the SSH key for {}@{}:{} (Permission denied); nothing on the \
             server was changed; check key/key_file and username (the key's public half must be \
             in that user's ~/.ssh/authorized_keys)",
            config.username, config.host, config.port
        ))
        .into();
    }
    Failure::deploy(format!(
        "cannot connect to {}@{}:{} over SSH: {detail}; nothing on the server was changed; \
         check host, port, username and key",
        config.username, config.host, config.port
    ))
    .into()
}

impl Host for SshHost {
    async fn run(&self, command: &ServerCommand) -> Result<Output> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let argv = super::with_deadline(command.final_argv(self.sudo), self.deadline);
        // The server stops the command at the deadline; this one covers a hung connection.
        let client_deadline = self.deadline + Duration::from_secs(10);
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(client_deadline, self.run_argv(command, argv)).await
        {
            Ok(result) => result,
            Err(_elapsed) => Err(super::deadline_error(command, self.deadline)),
        };
        trace(&format!("{} took", command.purpose), started);
        result
    }

    async fn run_batch(&self, commands: &[ServerCommand]) -> Result<Vec<Ran>> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let batch = batch::command(commands, self.sudo, self.deadline)?;
        // Every command has its own deadline on the server; this one covers a hung connection.
        let client_deadline = (self.deadline + Duration::from_secs(10))
            * u32::try_from(commands.len()).unwrap_or(u32::MAX);
        let started = std::time::Instant::now();
        let argv = batch.final_argv(false);
        let (code, stdout, stderr) =
            match tokio::time::timeout(client_deadline, self.run_argv_raw(&batch, argv)).await {
                Ok(result) => result?,
                Err(_elapsed) => return Err(super::deadline_error(&batch, self.deadline)),
            };
        trace(&format!("{} took", batch.purpose), started);
        // A batch that could not even start (no `sh`, no `timeout`) says why on stderr.
        batch::read_frames(&mut stdout.as_slice())
            .await
            .with_context(|| {
                format!(
                    "{} ({}): {}",
                    batch.purpose,
                    super::exit_text(code),
                    String::from_utf8_lossy(&stderr).trim()
                )
            })
    }

    async fn spawn(&self, command: &ServerCommand, batch: &[ServerCommand]) -> Result<Running> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let (words, _no_stdin) =
            batch::arguments(batch, batch::Mode::All, self.sudo, self.deadline)?;
        let command = command.clone().args(words);
        let mut remote = self.command(&command);
        remote
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = remote
            .spawn()
            .await
            .with_context(|| format!("{}: starting the command over SSH", command.purpose))?;
        let stdin = child
            .stdin()
            .take()
            .context("no stdin to the remote command")?;
        let stdout = child
            .stdout()
            .take()
            .context("no stdout from the remote command")?;
        tokio::spawn(async move {
            let _exit_is_read_from_stdout = child.wait().await;
        });
        Ok(Running {
            stdout: Box::new(BufReader::new(stdout)),
            stdin: Box::new(stdin),
        })
    }

    async fn http_get(&self, request: &HttpGet) -> Result<HttpReply, String> {
        let local = self
            .forward(&request.host, request.port)
            .await
            .map_err(|e| format!("{e:#}"))?;
        http::get_via(local, request).await
    }

    fn sudo(&self) -> bool {
        self.sudo
    }

    fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::Relaxed)
    }
}

/// At most this much of a command's stdout or stderr is kept; the rest is read and dropped,
/// so a runaway remote output can never exhaust memory.
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;

async fn read_bounded(mut stream: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    (&mut stream)
        .take(MAX_OUTPUT)
        .read_to_end(&mut kept)
        .await?;
    tokio::io::copy(&mut stream, &mut tokio::io::sink()).await?;
    Ok(kept)
}

impl SshHost {
    async fn run_argv(&self, command: &ServerCommand, argv: Vec<String>) -> Result<Output> {
        let (code, stdout, stderr) = self.run_argv_raw(command, argv).await?;
        Ok(Output {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Exit code, stdout and stderr as bytes.
    async fn run_argv_raw(
        &self,
        command: &ServerCommand,
        argv: Vec<String>,
    ) -> Result<(Option<i32>, Vec<u8>, Vec<u8>)> {
        let mut remote = self.remote(argv);
        remote.stdout(Stdio::piped()).stderr(Stdio::piped());
        let stdin_bytes = match &command.stdin {
            Stdin::None => None,
            Stdin::Text(text) => Some(text.as_bytes().to_vec()),
            Stdin::Secret(secret) => Some(secret.expose().as_bytes().to_vec()),
            Stdin::Bytes(bytes) => Some(bytes.clone()),
        };
        remote.stdin(if stdin_bytes.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = remote
            .spawn()
            .await
            .with_context(|| format!("{}: starting the command over SSH", command.purpose))?;
        if let (Some(bytes), Some(mut stdin)) = (stdin_bytes, child.stdin().take()) {
            stdin
                .write_all(&bytes)
                .await
                .with_context(|| format!("{}: writing stdin", command.purpose))?;
            stdin.shutdown().await.ok();
        }
        let stdout = child
            .stdout()
            .take()
            .context("no stdout from the remote command")?;
        let stderr = child
            .stderr()
            .take()
            .context("no stderr from the remote command")?;
        let (stdout, stderr) = tokio::try_join!(read_bounded(stdout), read_bounded(stderr))
            .with_context(|| format!("{}: reading its output", command.purpose))?;
        let status = child
            .wait()
            .await
            .with_context(|| format!("{}: the SSH connection failed", command.purpose))?;
        Ok((status.code(), stdout, stderr))
    }

    /// A local address whose connections reach `host:port` as seen from the server.
    async fn forward(&self, host: &str, port: u16) -> Result<SocketAddr> {
        let key = (host.to_owned(), port);
        if let Some(local) = self.forwards.lock().expect("not poisoned").get(&key) {
            return Ok(*local);
        }
        let local = free_local_port()?;
        let remote: SocketAddr = match host {
            "localhost" => SocketAddr::from(([127, 0, 0, 1], port)),
            other => format!("{other}:{port}")
                .parse()
                .with_context(|| format!("`{other}` must be an IP address for forwarding"))?,
        };
        self.session
            .request_port_forward(ForwardType::Local, local, remote)
            .await
            .with_context(|| format!("forwarding a local port to {remote} on the server"))?;
        self.forwards
            .lock()
            .expect("not poisoned")
            .insert(key, local);
        Ok(local)
    }
}

fn free_local_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free local port")?;
    Ok(listener.local_addr()?)
}
