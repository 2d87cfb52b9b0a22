//! The real [`Host`]: one OpenSSH master connection (ControlMaster, native mux) for the whole
//! run. The key and known_hosts live in a private temp dir (0700, files 0600) removed on drop.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use openssh::{ForwardType, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use super::http::{self, HttpGet, HttpReply};
use super::{hostkey, Host, Output, Running};
use crate::failure::Failure;
use crate::server::{ServerCommand, Stdin};
use crate::settings::{Config, HostKeyCheck, KeySource};

pub struct SshHost {
    session: Arc<Session>,
    sudo: bool,
    round_trips: AtomicUsize,
    deadline: Duration,
    /// One local forward per remote address, opened on first use.
    forwards: Mutex<HashMap<(String, u16), SocketAddr>>,
    // Dropped last: holds the key and known_hosts files.
    _secrets: tempfile::TempDir,
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    let mut text = content.replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

impl SshHost {
    pub async fn connect(config: &Config) -> Result<SshHost> {
        let secrets = tempfile::Builder::new().prefix("bluegreen-ssh").tempdir()?;
        let key_path = match &config.key {
            KeySource::Content(key) => {
                let path = secrets.path().join("key");
                write_private(&path, key.expose())?;
                path
            }
            KeySource::File(path) => path.clone(),
        };
        let known_hosts_path = secrets.path().join("known_hosts");
        let strictness = match &config.host_key {
            HostKeyCheck::KnownHosts(text) => {
                write_private(&known_hosts_path, text)?;
                KnownHosts::Strict
            }
            HostKeyCheck::Fingerprint(fingerprint) => {
                let pinned =
                    hostkey::pinned_known_hosts(&config.host, config.port, fingerprint).await?;
                write_private(&known_hosts_path, &pinned)?;
                KnownHosts::Strict
            }
            HostKeyCheck::AcceptNew => {
                write_private(&known_hosts_path, "")?;
                KnownHosts::Add
            }
        };
        let ssh_config = secrets.path().join("config");
        write_private(&ssh_config, &ssh_config_text(&known_hosts_path))?;
        let mut builder = SessionBuilder::default();
        builder
            .user(config.username.clone())
            .port(config.port)
            .keyfile(&key_path)
            .config_file(&ssh_config)
            .known_hosts_check(strictness)
            .user_known_hosts_file(&known_hosts_path)
            .control_directory(secrets.path())
            .connect_timeout(std::time::Duration::from_secs(15))
            .server_alive_interval(std::time::Duration::from_secs(5));
        let session = match builder.connect_mux(&config.host).await {
            Ok(session) => session,
            Err(error) => return Err(explain_connect_error(error, config, &known_hosts_path).await),
        };
        Ok(SshHost {
            session: Arc::new(session),
            sudo: config.sudo,
            round_trips: AtomicUsize::new(0),
            deadline: config.command_timeout,
            forwards: Mutex::new(HashMap::new()),
            _secrets: secrets,
        })
    }

    pub async fn close(self) {
        if let Ok(session) = Arc::try_unwrap(self.session) {
            let _best_effort = session.close().await;
        }
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

fn ssh_config_text(known_hosts: &Path) -> String {
    format!(
        "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  IdentitiesOnly yes\n  \
         PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  LogLevel ERROR\n  ServerAliveCountMax 3\n",
        known_hosts.display()
    )
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
    if host_key_problem {
        return hostkey::mismatch_failure(&config.host, config.port, known_hosts)
            .await
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
        match tokio::time::timeout(client_deadline, self.run_argv(command, argv)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(super::deadline_error(command, self.deadline)),
        }
    }

    async fn spawn(&self, command: &ServerCommand) -> Result<Running> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut remote = self.command(command);
        remote
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = remote
            .spawn()
            .await
            .with_context(|| format!("{}: starting the command over SSH", command.purpose))?;
        let stdin = child.stdin().take();
        let stdout = child
            .stdout()
            .take()
            .context("no stdout from the remote command")?;
        tokio::spawn(async move {
            let _exit_is_read_from_stdout = child.wait().await;
        });
        Ok(Running {
            stdout: Box::new(BufReader::new(stdout)),
            finish: Box::new(move || drop(stdin)),
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
        Ok(Output {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
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
