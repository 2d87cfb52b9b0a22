//! A fake server for unit tests: a [`Host`] that interprets the commands bluegreen sends (by
//! their script name or argv) against an in-memory model — containers, files, what nginx has
//! loaded, the connections each color accepted, the lock — and can inject one fault at any
//! command. Real servers carry the integration tests; this one makes every fault at every step
//! cheap enough to try them all.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, Result};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};

use crate::remote::batch::Ran;
use crate::remote::http::{HttpGet, HttpReply};
use crate::remote::{Host, Output, Running};
use crate::server::{ServerCommand, Stdin};

pub use super::fake_os::FaultKind;

#[derive(Clone, Debug)]
pub struct Container {
    pub image_ref: String,
    pub running: bool,
    pub port: u16,
    pub app: String,
    pub color: String,
}

/// An image in the fake registry.
#[derive(Clone, Debug)]
pub struct Image {
    pub digest_ref: String,
    pub id: String,
    pub healthy: bool,
    /// Every this many requests through nginx answers 500 (0: never); health probes pass.
    pub errors_every: u64,
}

#[derive(Clone, Default)]
pub struct Server {
    pub containers: BTreeMap<String, Container>,
    pub files: BTreeMap<String, String>,
    /// The switch content nginx routes by (what it loaded at the last reload).
    pub nginx_loaded: Option<String>,
    /// nginx includes the switch file (false: a file nginx never reads).
    pub nginx_includes_switch: bool,
    /// The registry: tag reference → image.
    pub registry: HashMap<String, Image>,
    pub lock_held: bool,
    /// Process mode: the release ids uploaded to `state_dir/releases`.
    pub releases: std::collections::BTreeSet<String>,
    /// Commands run, rendered without sudo.
    pub log: Vec<String>,
    /// Those of them run with sudo, rendered without it.
    pub privileged: Vec<String>,
    /// No temporary directory for a batch: every batch says it could not start.
    pub no_batch_dir: bool,
    /// `auto`'s probe finds nft usable (otherwise it is not understood, and nginx is chosen).
    pub nft_works: bool,
    /// Connections accepted per host port (each request is one).
    pub accepted: BTreeMap<u16, u64>,
    /// Port of nginx (the verify URL).
    pub nginx_port: u16,
    /// Ports whose connections the socket tables do not show (nginx reaches the app some way
    /// they do not see): verification finds no evidence for them.
    pub hidden_ports: std::collections::BTreeSet<u16>,
    /// How long each command takes (0: it only yields), so that work beside the steps (the
    /// impact prober) gets its turns as on a real server.
    pub latency: Duration,
    pub switch_file: String,
    /// The nftables switch: (service port, the color port it is sent to).
    pub dnat: Option<(u16, u16)>,
    fault: Option<(usize, FaultKind)>,
    commands: usize,
}

#[derive(Clone)]
pub struct FakeHost {
    pub server: Arc<Mutex<Server>>,
    cancel: Arc<watch::Sender<bool>>,
    pub killed: Arc<Notify>,
    deadline: Duration,
    /// Round trips: single commands, batches and the lock.
    trips: Arc<AtomicUsize>,
}

impl FakeHost {
    pub fn new(server: Server, cancel: watch::Sender<bool>, deadline: Duration) -> FakeHost {
        FakeHost {
            server: Arc::new(Mutex::new(server)),
            cancel: Arc::new(cancel),
            killed: Arc::new(Notify::new()),
            deadline,
            trips: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Injects `kind` at the `index`-th command from now (0: the next one).
    pub fn fault_at(&self, index: usize, kind: FaultKind) {
        let mut server = self.server.lock().unwrap();
        let at = server.commands + index;
        server.fault = Some((at, kind));
    }

    /// Takes the fault due for the command about to run, if any.
    fn fault_now(&self) -> Option<FaultKind> {
        let mut server = self.server.lock().unwrap();
        let index = server.commands;
        server.commands += 1;
        match server.fault {
            Some((at, kind)) if at == index => {
                server.fault = None;
                Some(kind)
            }
            _ => None,
        }
    }
}

fn failed(stderr: &str) -> Output {
    Output {
        code: Some(1),
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

impl Server {
    pub fn new(nginx_port: u16, switch_file: &str) -> Server {
        Server {
            nginx_port,
            switch_file: switch_file.into(),
            nginx_includes_switch: true,
            ..Server::default()
        }
    }

    pub fn push_image(&mut self, tag_ref: &str, healthy: bool) {
        let n = self.registry.len() + 1;
        let repo = crate::engine::deploy::repository_of(tag_ref);
        self.registry.insert(
            tag_ref.into(),
            Image {
                digest_ref: format!(
                    "{repo}@sha256:{}",
                    format!("{n:x}").repeat(64)[..64].to_owned()
                ),
                id: format!(
                    "sha256:{}",
                    format!("{:x}", n + 100).repeat(64)[..64].to_owned()
                ),
                healthy,
                errors_every: 0,
            },
        );
    }

    fn image_by_ref(&self, reference: &str) -> Option<&Image> {
        self.registry
            .get(reference)
            .or_else(|| self.registry.values().find(|i| i.digest_ref == reference))
    }

    /// Whether a container answers on `port` with 2xx.
    fn healthy_on(&self, port: u16) -> Option<bool> {
        self.containers
            .values()
            .find(|c| c.running && c.port == port)
            .map(|c| self.image_by_ref(&c.image_ref).is_some_and(|i| i.healthy))
    }

    /// How often the app on `port` fails a request through nginx (`None`: never).
    fn errors_every_on(&self, port: u16) -> Option<u64> {
        let container = self
            .containers
            .values()
            .find(|c| c.running && c.port == port)?;
        let every = self.image_by_ref(&container.image_ref)?.errors_every;
        (every > 0).then_some(every)
    }

    /// The port nginx routes to now (through the DNAT rule when nginx proxies to its port).
    pub fn routed_port(&self) -> Option<u16> {
        let loaded = self.nginx_loaded.as_deref()?;
        let at = loaded.rfind(':')?;
        let port = loaded[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()?;
        match self.dnat {
            Some((service, target)) if service == port => Some(target),
            _ => Some(port),
        }
    }

    /// `nft -f -`, `nft list table`, `nft delete table` on the one DNAT rule.
    fn nft(&mut self, args: &[&str], stdin: &Stdin) -> Output {
        let ok = |stdout: String| Output {
            code: Some(0),
            stdout,
            stderr: String::new(),
        };
        match args {
            ["-f", "-"] => {
                let Stdin::Text(ruleset) = stdin else {
                    return failed("no ruleset");
                };
                let words: Vec<&str> = ruleset.split_whitespace().collect();
                let after = |word: &str| {
                    words
                        .iter()
                        .position(|w| *w == word)
                        .and_then(|at| words.get(at + 1))
                        .copied()
                };
                let service = after("dport").and_then(|p| p.parse().ok());
                let target = after("to")
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok());
                match (service, target) {
                    (Some(service), Some(target)) => {
                        self.dnat = Some((service, target));
                        ok(String::new())
                    }
                    _ => failed("syntax error"),
                }
            }
            ["list", "table", "ip", table] => match self.dnat {
                Some((service, target)) => ok(crate::server::nft::ruleset(table, service, target)),
                None => failed("No such file or directory"),
            },
            ["delete", "table", "ip", _] => {
                self.dnat = None;
                ok(String::new())
            }
            _ => failed("the fake host does not know this nft command"),
        }
    }

    fn run(&mut self, command: &ServerCommand) -> Output {
        let argv = &command.argv;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let ok = |stdout: String| Output {
            code: Some(0),
            stdout,
            stderr: String::new(),
        };
        let fail = |stderr: &str| Output {
            code: Some(1),
            stdout: String::new(),
            stderr: stderr.into(),
        };
        if let Some(output) = command.script_name.and_then(|s| self.process(s, &args)) {
            return output;
        }
        match command.script_name {
            Some("bluegreen-read-state") => return ok(self.read_state(args[5])),
            Some("bluegreen-record") => {
                if !args[5].is_empty() {
                    self.files.insert("state.json".into(), args[5].to_owned());
                }
                if !args[6].is_empty() {
                    let history = self.files.entry("history.jsonl".into()).or_default();
                    history.push_str(args[6]);
                    history.push('\n');
                }
                return ok(String::new());
            }
            Some("bluegreen-pull") => {
                let reference = args[6];
                return match self.image_by_ref(reference) {
                    Some(image) => ok(format!(
                        "{reference}\n[\"{}\"]\nid {}\n",
                        image.digest_ref, image.id
                    )),
                    None => fail("manifest unknown"),
                };
            }
            Some("bluegreen-write-switch-file") => {
                let Stdin::Text(content) = &command.stdin else {
                    return fail("no content");
                };
                self.files.insert(args[4].to_owned(), content.clone());
                return ok(String::new());
            }
            Some("bluegreen-drain") => return ok("drained 0\n".into()),
            // `auto`'s question, on a server where nft works and the service port is free.
            Some("bluegreen-switch-probe") if self.nft_works => {
                return ok("nft usable\nlisteners 0\n".into())
            }
            Some("bluegreen-connections") => {
                // args: save|since FILE TARGET blue_port blue_pid green_port green_pid, or
                // forget FILE -
                if args[4] == "forget" {
                    self.files.remove(args[5]);
                    return ok("done\n".into());
                }
                let visible = |port: &str| {
                    let port: u16 = port.parse().unwrap();
                    if self.hidden_ports.contains(&port) {
                        0
                    } else {
                        self.accepted.get(&port).copied().unwrap_or(0)
                    }
                };
                let now = [visible(args[7]), visible(args[9])];
                if args[4] == "save" {
                    let file = format!("/tmp/bluegreen-connections.{}", self.commands);
                    self.files
                        .insert(file.clone(), format!("{} {}", now[0], now[1]));
                    return ok(format!("file {file}\ndone\n"));
                }
                let Some(before) = self.files.get(args[5]) else {
                    return fail("the first reading is gone");
                };
                let before: Vec<u64> = before.split(' ').map(|n| n.parse().unwrap()).collect();
                let gained = [now[0] - before[0], now[1] - before[1]];
                let target_gained = match args[6] {
                    "blue" => gained[0] > 0,
                    "green" => gained[1] > 0,
                    _ => true,
                };
                if target_gained {
                    self.files.remove(args[5]);
                }
                return ok(format!("blue {}\ngreen {}\ndone\n", gained[0], gained[1]));
            }
            Some("bluegreen-port-holders") => {
                let mut out = String::new();
                // args[4]: the addresses nginx reaches; then the ports.
                for port in &args[5..] {
                    let port_number: u16 = port.parse().unwrap();
                    let holder = self
                        .containers
                        .iter()
                        .find(|(_, c)| c.running && c.port == port_number);
                    match holder {
                        Some((name, c)) => out.push_str(&format!(
                            "{port} container {name} {} {}\n",
                            c.image_ref, c.app
                        )),
                        None => out.push_str(&format!("{port} free\n")),
                    }
                }
                return ok(out);
            }
            // No other app's DNAT rule and no listener on service_port.
            Some("bluegreen-service-port-users") => return ok(String::new()),
            Some(other) => return fail(&format!("the fake host does not know script {other}")),
            None => {}
        }
        match args.as_slice() {
            ["sh", "-c", shell] if command.purpose == "test nginx configuration" => {
                let _ = shell;
                ok(String::new())
            }
            ["sh", "-c", _] if command.purpose == "reload nginx" => {
                if self.nginx_includes_switch {
                    self.nginx_loaded = self.files.get(&self.switch_file).cloned();
                }
                ok(String::new())
            }
            ["nft", rest @ ..] => self.nft(rest, &command.stdin),
            ["rm", "-f", path] => {
                self.files.remove(*path);
                ok(String::new())
            }
            ["docker", "inspect", "--type", "container", names @ ..] => {
                let found: Vec<String> = names
                    .iter()
                    .filter_map(|name| self.containers.get(*name).map(|c| self.inspect(name, c)))
                    .collect();
                Output {
                    code: Some(if found.len() == names.len() { 0 } else { 1 }),
                    stdout: format!("[{}]", found.join(",")),
                    stderr: String::new(),
                }
            }
            ["docker", "run", rest @ ..] => self.docker_run(rest),
            ["docker", "start", name] => match self.containers.get_mut(*name) {
                Some(c) => {
                    c.running = true;
                    ok(String::new())
                }
                None => fail("No such container"),
            },
            ["docker", "stop", "--time", _, name] => match self.containers.get_mut(*name) {
                Some(c) => {
                    c.running = false;
                    ok(String::new())
                }
                None => fail("No such container"),
            },
            ["docker", "rename", name, new_name] => match self.containers.remove(*name) {
                Some(c) => {
                    self.containers.insert((*new_name).to_owned(), c);
                    ok(String::new())
                }
                None => fail("No such container"),
            },
            ["docker", "rm", "-f", name] => {
                self.containers.remove(*name);
                ok(String::new())
            }
            ["docker", "logs", ..] => ok("app log line\n".into()),
            _ => fail(&format!("the fake host does not know `{}`", args.join(" "))),
        }
    }

    /// Process mode's scripts: the colors' processes are containers named `process-{color}`
    /// running `release:{id}`; `None` for other scripts.
    fn process(&mut self, script: &str, args: &[&str]) -> Option<Output> {
        let ok = |stdout: String| Output {
            code: Some(0),
            stdout,
            stderr: String::new(),
        };
        let name = |color: &str| format!("process-{color}");
        Some(match script {
            "bluegreen-release-present" => ok(if self.releases.contains(args[5]) {
                "present\n".into()
            } else {
                "absent\n".into()
            }),
            "bluegreen-upload-release" => {
                self.releases.insert(args[5].to_owned());
                ok("uploaded\n".into())
            }
            "bluegreen-start-process" => {
                let (color, port, id) = (args[5], args[6], args[7]);
                if !self.releases.contains(id) {
                    return Some(Output {
                        code: Some(1),
                        stdout: String::new(),
                        stderr: format!("release {id} is not on the server"),
                    });
                }
                let container = Container {
                    image_ref: format!("release:{id}"),
                    running: true,
                    port: port.parse().unwrap(),
                    app: String::new(),
                    color: color.to_owned(),
                };
                self.containers.insert(name(color), container);
                ok("started 42\n".into())
            }
            "bluegreen-stop-color" => {
                let color = args[5];
                if args.get(7) == Some(&"forget") {
                    self.containers.remove(&name(color));
                } else if let Some(c) = self.containers.get_mut(&name(color)) {
                    c.running = false;
                }
                ok("stopped\n".into())
            }
            "bluegreen-process-status" => {
                let mut out = String::new();
                for color in ["blue", "green"] {
                    match self.containers.get(&name(color)) {
                        Some(c) => out.push_str(&format!(
                            "{color} 42 {} {}\n",
                            if c.running { "running" } else { "exited" },
                            c.image_ref.trim_start_matches("release:")
                        )),
                        None => out.push_str(&format!("{color} - none -\n")),
                    }
                }
                ok(out)
            }
            "bluegreen-process-logs" => ok("app log line\n".into()),
            _ => return None,
        })
    }

    fn docker_run(&mut self, rest: &[&str]) -> Output {
        let value = |flag: &str| {
            rest.windows(2)
                .find(|w| w[0] == flag)
                .map(|w| w[1].to_owned())
                .unwrap_or_default()
        };
        let name = value("--name");
        if self.containers.contains_key(&name) {
            return Output {
                code: Some(125),
                stdout: String::new(),
                stderr: format!("Conflict. The container name \"/{name}\" is already in use"),
            };
        }
        let publish = value("--publish");
        let port: u16 = publish
            .split(':')
            .nth(1)
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        let labels: Vec<String> = rest
            .windows(2)
            .filter(|w| w[0] == "--label")
            .map(|w| w[1].to_owned())
            .collect();
        let label = |key: &str| {
            labels
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_default()
                .to_owned()
        };
        let image_ref = rest.last().copied().unwrap_or_default().to_owned();
        self.containers.insert(
            name,
            Container {
                image_ref,
                running: true,
                port,
                app: label("bluegreen.app"),
                color: label("bluegreen.color"),
            },
        );
        Output {
            code: Some(0),
            stdout: "0123abcd\n".into(),
            stderr: String::new(),
        }
    }

    fn inspect(&self, name: &str, c: &Container) -> String {
        let id = self
            .image_by_ref(&c.image_ref)
            .map(|i| i.id.clone())
            .unwrap_or_default();
        serde_json::json!({
            "Id": format!("id-{name}"),
            "Name": format!("/{name}"),
            "Image": id,
            "RestartCount": 0,
            "State": {"Status": if c.running {"running"} else {"exited"}, "Running": c.running,
                      "Restarting": false, "ExitCode": 0, "Pid": if c.running {c.port as u32} else {0}},
            "Config": {"Image": c.image_ref, "Labels": {
                "bluegreen.app": c.app, "bluegreen.color": c.color, "bluegreen.image": c.image_ref}}
        })
        .to_string()
    }

    fn read_state(&self, switch_file: &str) -> String {
        let mut out = String::from("::bluegreen::switch\n");
        match self.files.get(switch_file) {
            Some(content) => out.push_str(content),
            None => out.push_str("::bluegreen::missing\n"),
        }
        out.push_str("::bluegreen::state\n");
        if let Some(state) = self.files.get("state.json") {
            out.push_str(state);
            out.push('\n');
        }
        out.push_str("::bluegreen::lock\n::bluegreen::history\n");
        if let Some(history) = self.files.get("history.jsonl") {
            out.push_str(history);
        }
        out
    }

    fn http(&mut self, request: &HttpGet) -> Result<HttpReply, String> {
        let reply = |status| HttpReply {
            status,
            color_header: None,
            body: r#"{"status":"UP"}"#.into(),
        };
        let port = if request.port == self.nginx_port {
            match self.routed_port() {
                Some(port) => port,
                None => return Ok(reply(502)),
            }
        } else {
            request.port
        };
        match self.healthy_on(port) {
            Some(healthy) => {
                let accepted = self.accepted.entry(port).or_default();
                *accepted += 1;
                let accepted = *accepted;
                let flaky = request.port == self.nginx_port
                    && self
                        .errors_every_on(port)
                        .is_some_and(|n| accepted.is_multiple_of(n));
                Ok(reply(if healthy && !flaky { 200 } else { 500 }))
            }
            None if request.port == self.nginx_port => Ok(reply(502)),
            None => Err("connection refused".into()),
        }
    }

    pub fn history_len(&self) -> usize {
        self.files
            .get("history.jsonl")
            .map_or(0, |h| h.lines().count())
    }
}

/// The lock holder's output; dropping it is the SSH channel closing: the lock is free.
struct LockStream {
    text: std::io::Cursor<Vec<u8>>,
    /// What the holder says later (`recorded`), written by [`LockInput`].
    replies: Arc<Mutex<Vec<u8>>>,
    server: Arc<Mutex<Server>>,
}

impl LockStream {
    fn refill(&mut self) {
        if self.text.position() as usize >= self.text.get_ref().len() {
            let more = std::mem::take(&mut *self.replies.lock().unwrap());
            if !more.is_empty() {
                self.text = std::io::Cursor::new(more);
            }
        }
    }
}

impl Drop for LockStream {
    fn drop(&mut self) {
        self.server.lock().unwrap().lock_held = false;
    }
}

impl AsyncRead for LockStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.refill();
        Pin::new(&mut self.text).poll_read(cx, buf)
    }
}

impl AsyncBufRead for LockStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        let this = self.get_mut();
        this.refill();
        Pin::new(&mut this.text).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.text).consume(amt)
    }
}

/// The lock holder's stdin: each line is a history entry, appended while the lock is held.
struct LockInput {
    line: Vec<u8>,
    replies: Arc<Mutex<Vec<u8>>>,
    server: Arc<Mutex<Server>>,
}

impl AsyncWrite for LockInput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        for byte in buf {
            if *byte != b'\n' {
                self.line.push(*byte);
                continue;
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
            let mut server = self.server.lock().unwrap();
            let history = server.files.entry("history.jsonl".into()).or_default();
            history.push_str(&line);
            history.push('\n');
            self.replies
                .lock()
                .unwrap()
                .extend_from_slice(b"recorded\n");
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl FakeHost {
    /// One command as the server runs it, faults included (not counted as a round trip).
    async fn run_one(&self, command: &ServerCommand) -> Result<Output> {
        let fault = self.fault_now();
        if fault != Some(FaultKind::Kill) {
            let mut server = self.server.lock().unwrap();
            server.log.push(command.render(false));
            if command.privileged {
                server.privileged.push(command.render(false));
            }
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
        let (output, latency) = {
            let mut server = self.server.lock().unwrap();
            (server.run(command), server.latency)
        };
        if latency.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(latency).await;
        }
        if fault == Some(FaultKind::ConnectionLost) {
            return Err(anyhow!(
                "{}: the SSH connection failed (injected)",
                command.purpose
            ));
        }
        Ok(output)
    }
}

impl Host for FakeHost {
    async fn run(&self, command: &ServerCommand) -> Result<Output> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.run_one(command).await
    }

    /// As the batch script runs them: in order, up to the first failure; a lost connection
    /// loses the answers, not the commands, which go on on the server.
    async fn run_batch(&self, commands: &[ServerCommand]) -> Result<Vec<Ran>> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        // What the real host could not send, the fake refuses too.
        crate::remote::batch::arguments(
            commands,
            crate::remote::batch::Mode::StopAtFailure,
            false,
            self.deadline,
        )?;
        if self.server.lock().unwrap().no_batch_dir {
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
        {
            let mut server = self.server.lock().unwrap();
            server.log.push(command.render(false));
            assert!(!server.lock_held, "the fake lock is already held");
            server.lock_held = true;
        }
        let replies = Arc::new(Mutex::new(Vec::new()));
        // From here on, dropping the stream (the run killed or the channel lost) frees the lock.
        let mut stream = LockStream {
            text: std::io::Cursor::new(Vec::new()),
            replies: replies.clone(),
            server: self.server.clone(),
        };
        let mut text = b"acquired\n".to_vec();
        let no_batch_dir = self.server.lock().unwrap().no_batch_dir;
        if !batch.is_empty() && no_batch_dir {
            text.extend(format!("{}\n", crate::remote::batch::FAILED).bytes());
        } else if !batch.is_empty() {
            let mut outputs = Vec::new();
            for command in batch {
                outputs.push(self.run_one(command).await?);
            }
            text.extend(crate::remote::batch::encode(&outputs));
        }
        stream.text = std::io::Cursor::new(text);
        Ok(Running {
            stdout: Box::new(stream),
            stdin: Box::new(LockInput {
                line: Vec::new(),
                replies,
                server: self.server.clone(),
            }),
        })
    }

    async fn http_get(&self, request: &HttpGet) -> Result<HttpReply, String> {
        self.server.lock().unwrap().http(request)
    }

    fn sudo(&self) -> bool {
        false
    }

    fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }
}
