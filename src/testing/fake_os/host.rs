//! [`FakeOsHost`]: a [`Host`] that runs every command for real, here, on a [`FakeOs`]: argv as
//! given (scripts as `sh -c TEXT NAME ARGS…`), in the machine's directory, with its stand-ins
//! first on PATH; the lock is the real lock script, holding a real `flock` until its stdin
//! closes. Faults of the transport (the command fails, the connection drops, it hangs, SIGTERM
//! arrives, bluegreen is killed) are injected at the N-th command, as the SSH host would see them.
//! `FAKE_OS_TRACE=1` prints how long each real command took (to find a slow script).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{watch, Notify};

use super::FakeOs;
use crate::remote::batch::Ran;
use crate::remote::http::{HttpGet, HttpReply};
use crate::remote::{Host, Output, Running};
use crate::server::{ServerCommand, Stdin};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The command fails (exit 1) without doing anything.
    Exit,
    /// The command runs, then the connection drops before its result arrives.
    ConnectionLost,
    /// The command hangs until the server stops it at `command_timeout` (exit 124).
    Hang,
    /// SIGTERM arrives while the command runs (it completes).
    Sigterm,
    /// bluegreen is killed as the command starts (it never runs).
    Kill,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Exit,
        FaultKind::ConnectionLost,
        FaultKind::Hang,
        FaultKind::Sigterm,
        FaultKind::Kill,
    ];
}

/// A real command that runs longer than this on the fake machine is stopped (exit 124): the
/// matrix's `command_timeout` is kept short for its injected hangs, too short for real forks on
/// a loaded machine.
const REAL_DEADLINE: Duration = Duration::from_secs(20);

pub struct FakeOsHost {
    pub os: Arc<Mutex<FakeOs>>,
    root: PathBuf,
    /// The machine's PATH.
    path: String,
    cancel: watch::Sender<bool>,
    pub killed: Notify,
    deadline: Duration,
    fault: Mutex<Option<(usize, FaultKind)>>,
    commands: AtomicUsize,
    trips: AtomicUsize,
    /// The lock holders started, waited for by [`FakeOsHost::settle`].
    holders: Mutex<Vec<tokio::process::Child>>,
}

impl FakeOsHost {
    pub fn new(os: FakeOs, cancel: watch::Sender<bool>, deadline: Duration) -> FakeOsHost {
        FakeOsHost {
            root: os.root().to_owned(),
            path: os.search_path(),
            os: Arc::new(Mutex::new(os)),
            cancel,
            killed: Notify::new(),
            deadline,
            fault: Mutex::new(None),
            commands: AtomicUsize::new(0),
            trips: AtomicUsize::new(0),
            holders: Mutex::new(Vec::new()),
        }
    }

    /// Injects `kind` at the `index`-th command from now (0: the next one).
    pub fn fault_at(&self, index: usize, kind: FaultKind) {
        let at = self.commands.load(Ordering::SeqCst) + index;
        *self.fault.lock().unwrap() = Some((at, kind));
    }

    fn fault_now(&self) -> Option<FaultKind> {
        let index = self.commands.fetch_add(1, Ordering::SeqCst);
        let mut fault = self.fault.lock().unwrap();
        match *fault {
            Some((at, kind)) if at == index => {
                *fault = None;
                Some(kind)
            }
            _ => None,
        }
    }

    fn log(&self, command: &ServerCommand) {
        let mut os = self.os.lock().unwrap();
        os.log.push(command.render(false));
        if command.privileged {
            os.privileged.push(command.render(false));
        }
    }

    /// Waits until every lock holder has ended (their stdin is closed when the run ends);
    /// returns false when one still runs after `within` (it is then killed).
    pub async fn settle(&self, within: Duration) -> bool {
        let holders = std::mem::take(&mut *self.holders.lock().unwrap());
        let mut ended = true;
        for mut holder in holders {
            if tokio::time::timeout(within, holder.wait()).await.is_err() {
                ended = false;
                let _ = holder.kill().await;
            }
        }
        ended
    }

    /// The machine after the run.
    pub fn into_os(self) -> FakeOs {
        Arc::try_unwrap(self.os)
            .ok()
            .expect("no one else holds the fake machine")
            .into_inner()
            .unwrap()
    }

    fn process(&self, argv: &[String]) -> tokio::process::Command {
        let mut process = tokio::process::Command::new(&argv[0]);
        process
            .args(&argv[1..])
            .current_dir(&self.root)
            .env("PATH", &self.path)
            .env("HOME", &self.root)
            .env("TMPDIR", self.root.join("tmp"))
            // The stand-in `java` ends its color (supervisor included) once this test process
            // is gone: a machine a test never dropped leaves nothing running behind it.
            .env("FAKE_OS_OWNER", std::process::id().to_string())
            .process_group(0);
        process
    }

    /// Runs `command` for real on the machine.
    async fn execute(&self, command: &ServerCommand) -> Result<Output> {
        let argv = command.final_argv(false);
        let input = match &command.stdin {
            Stdin::None => None,
            Stdin::Text(text) => Some(text.as_bytes().to_vec()),
            Stdin::Secret(secret) => Some(secret.expose().as_bytes().to_vec()),
            Stdin::Bytes(bytes) => Some(bytes.clone()),
        };
        let spawned = self
            .process(&argv)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            // As the server's shell answers a command it does not have.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Output {
                    code: Some(127),
                    stdout: String::new(),
                    stderr: format!("sh: 1: {}: not found", argv[0]),
                })
            }
            other => other.with_context(|| format!("{}: starting {}", command.purpose, argv[0]))?,
        };
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            // A command that does not read its input closes the pipe: not an error here.
            let _ = stdin.write_all(&bytes).await;
        }
        let pid = child.id();
        match tokio::time::timeout(REAL_DEADLINE, child.wait_with_output()).await {
            Ok(output) => {
                let output = output?;
                Ok(Output {
                    code: output.status.code(),
                    stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                })
            }
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: a plain signal to the process group this host started.
                    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                }
                Ok(Output {
                    code: Some(124),
                    stdout: String::new(),
                    stderr: format!("{} ran longer than {REAL_DEADLINE:?}", command.purpose),
                })
            }
        }
    }

    /// One command as the server runs it, faults included (not counted as a round trip).
    async fn run_one(&self, command: &ServerCommand) -> Result<Output> {
        let fault = self.fault_now();
        if fault != Some(FaultKind::Kill) {
            self.log(command);
        }
        match fault {
            Some(FaultKind::Exit) => {
                return Ok(Output {
                    code: Some(1),
                    stdout: String::new(),
                    stderr: "injected failure".into(),
                })
            }
            Some(FaultKind::Hang) => {
                tokio::time::sleep(self.deadline).await;
                return Ok(Output {
                    code: Some(124),
                    stdout: String::new(),
                    stderr: String::new(),
                });
            }
            Some(FaultKind::Kill) => {
                self.killed.notify_one();
                std::future::pending::<()>().await;
            }
            Some(FaultKind::Sigterm) => {
                let _ = self.cancel.send(true);
            }
            _ => {}
        }
        let started = std::time::Instant::now();
        let output = self.execute(command).await?;
        if std::env::var("FAKE_OS_TRACE").is_ok() {
            eprintln!("{:>5}ms {}", started.elapsed().as_millis(), command.purpose);
        }
        if fault == Some(FaultKind::ConnectionLost) {
            return Err(anyhow!(
                "{}: the SSH connection failed (injected)",
                command.purpose
            ));
        }
        Ok(output)
    }

    /// Starts the real lock script; returns it and what it printed up to its answer.
    async fn start_holder(
        &self,
        command: &ServerCommand,
    ) -> Result<(
        tokio::process::Child,
        Vec<u8>,
        BufReader<tokio::process::ChildStdout>,
    )> {
        let argv = command.final_argv(false);
        let mut child = self
            .process(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("{}: starting the lock script", command.purpose))?;
        let mut stdout = BufReader::new(child.stdout.take().context("the holder's stdout")?);
        let mut said = Vec::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).await? == 0 {
                break;
            }
            said.extend_from_slice(line.as_bytes());
            if !line.starts_with("busy") {
                break;
            }
        }
        Ok((child, said, stdout))
    }
}

impl Host for FakeOsHost {
    async fn run(&self, command: &ServerCommand) -> Result<Output> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.run_one(command).await
    }

    /// As the batch script runs them: in order, up to the first failure; a lost connection
    /// loses the answers, not the commands, which go on on the server.
    async fn run_batch(&self, commands: &[ServerCommand]) -> Result<Vec<Ran>> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        // What the real host could not send, this one refuses too.
        crate::remote::batch::arguments(
            commands,
            crate::remote::batch::Mode::StopAtFailure,
            false,
            self.deadline,
        )?;
        if self.os.lock().unwrap().no_batch_dir {
            return Err(crate::remote::batch::NotRun.into());
        }
        let mut results = Vec::new();
        let mut lost = None;
        for command in commands {
            match self.run_one(command).await {
                Ok(output) => {
                    let failed = !output.success();
                    if lost.is_none() {
                        results.push(Ran {
                            output,
                            took: Some(Duration::ZERO),
                        });
                    }
                    if failed {
                        break;
                    }
                }
                Err(error) => {
                    lost.get_or_insert(error);
                }
            }
        }
        match lost {
            Some(error) => Err(error),
            None => Ok(results),
        }
    }

    /// The real lock script holds the lock; the readings that ride on its channel run as
    /// separate commands (each can take a fault) and their frames follow its `acquired`.
    async fn spawn(&self, command: &ServerCommand, batch: &[ServerCommand]) -> Result<Running> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        let fault = self.fault_now();
        if matches!(fault, Some(FaultKind::Kill)) {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
        if matches!(
            fault,
            Some(FaultKind::Exit | FaultKind::ConnectionLost | FaultKind::Hang)
        ) {
            return Err(anyhow!("{}: injected failure", command.purpose));
        }
        if matches!(fault, Some(FaultKind::Sigterm)) {
            let _ = self.cancel.send(true);
        }
        self.log(command);
        let (mut child, mut text, rest) = self.start_holder(command).await?;
        let stdin = child.stdin.take().context("the holder's stdin")?;
        self.holders.lock().unwrap().push(child);
        let acquired = text.ends_with(b"acquired\n");
        let no_batch_dir = self.os.lock().unwrap().no_batch_dir;
        if acquired && !batch.is_empty() && no_batch_dir {
            text.extend(format!("{}\n", crate::remote::batch::FAILED).bytes());
        } else if acquired && !batch.is_empty() {
            let mut outputs = Vec::new();
            for command in batch {
                outputs.push(self.run_one(command).await?);
            }
            text.extend(crate::remote::batch::encode(&outputs));
        }
        Ok(Running {
            stdout: Box::new(BufReader::new(std::io::Cursor::new(text).chain(rest))),
            stdin: Box::new(stdin),
        })
    }

    async fn http_get(&self, request: &HttpGet) -> Result<HttpReply, String> {
        tokio::task::yield_now().await;
        self.os.lock().unwrap().http(request)
    }

    fn sudo(&self) -> bool {
        false
    }

    fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }
}
