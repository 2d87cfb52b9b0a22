//! Issue 9: nothing outlives a run and nothing leaks. Each test has its own sshd (so the
//! connections and ssh processes counted are its own), the real Docker engine and registry.
//! The one fake is the GitHub API (wiremock), in the deployment status test.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::github::FakeGitHub;
use crate::support::{sh, shared, PrivateSshd, Run, Site, REGISTRY_TOKEN};

/// A site that reaches the server through its own sshd, with the key given as content (so
/// bluegreen writes a key file) and its own temp directory (`TMPDIR`), readable by anyone so
/// another user can try.
struct Sandbox {
    site: Site,
    sshd: PrivateSshd,
    tmp: tempfile::TempDir,
    key: String,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let mut site = Site::new(name);
        let sshd = PrivateSshd::start(&format!("sshd-{}", site.app));
        let key = own_user_key(&site.dir);
        let tmp = tempfile::Builder::new()
            .prefix("bluegreen-leaks")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        site.env.retain(|(k, _)| k != "BLUEGREEN_KEY_FILE");
        site.set("BLUEGREEN_KEY", &key);
        site.set("BLUEGREEN_PORT", &sshd.port.to_string());
        site.set("BLUEGREEN_KNOWN_HOSTS", &sshd.known_hosts);
        site.set("TMPDIR", tmp.path().to_str().unwrap());
        Sandbox {
            site,
            sshd,
            tmp,
            key,
        }
    }

    /// A line of the private key that only this key has: the first base64 lines are the
    /// same in every unencrypted ed25519 key; the fourth holds private key bytes.
    fn key_line(&self) -> &str {
        self.key.lines().nth(3).unwrap()
    }

    /// The ssh processes on this machine talking to this sandbox's sshd.
    fn client_processes(&self) -> usize {
        let port = self.sshd.port.to_string();
        processes()
            .filter(|(_, argv)| {
                argv.first()
                    .is_some_and(|a| a == "ssh" || a.ends_with("/ssh"))
                    && argv.windows(2).any(|w| w[0] == "-p" && w[1] == port)
            })
            .count()
    }

    /// Established TCP connections on the server side of this sandbox's sshd.
    fn server_connections(&self) -> usize {
        let out = sh(Command::new("ss").args(["-Htn", "state", "established"]));
        let suffix = format!(":{}", self.sshd.port);
        out.lines()
            .filter(|line| {
                line.split_whitespace()
                    .nth(2)
                    .is_some_and(|local| local.ends_with(&suffix))
            })
            .count()
    }

    fn counts(&self) -> (usize, usize) {
        (self.client_processes(), self.server_connections())
    }

    /// Asserts that no ssh process and no server connection of this sandbox remains, waiting
    /// up to 15 s for them to go; returns how long that took.
    #[track_caller]
    fn assert_nothing_left(&self, after: &str) -> Duration {
        let started = Instant::now();
        loop {
            let counts = self.counts();
            if counts == (0, 0) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "after {after}: {} ssh processes and {} server connections still there after 15s",
                counts.0,
                counts.1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Our private directories left in TMPDIR, with the files inside each.
    fn leftovers(&self) -> Vec<(String, Vec<String>)> {
        std::fs::read_dir(self.tmp.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("bluegreen-ssh"))
            .map(|e| {
                let files = std::fs::read_dir(e.path())
                    .map(|d| {
                        d.flatten()
                            .map(|f| f.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), files)
            })
            .collect()
    }

    /// Starts the binary with output going to files (no pipe can block it).
    fn start(&self, args: &[&str]) -> Started {
        let out = self.site.dir.join(format!("out-{}", unique()));
        let err = self.site.dir.join(format!("err-{}", unique()));
        let child = self
            .site
            .bluegreen(args)
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Started { child, out, err }
    }
}

/// A user key only this sandbox uses (so a concurrent test's processes can never hold it),
/// authorized on the sandbox server.
fn own_user_key(dir: &Path) -> String {
    let path = dir.join("leak_key");
    sh(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path));
    let public = std::fs::read_to_string(dir.join("leak_key.pub")).unwrap();
    let mut authorized = std::fs::OpenOptions::new()
        .append(true)
        .open(shared().dir.join("authorized_keys"))
        .unwrap();
    std::io::Write::write_all(&mut authorized, public.as_bytes()).unwrap();
    std::fs::read_to_string(&path).unwrap()
}

fn unique() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

struct Started {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Started {
    fn finish(mut self, within: Duration) -> Run {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("bluegreen did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.out).unwrap(),
            stderr: std::fs::read_to_string(&self.err).unwrap(),
        }
    }

    fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

/// (pid, argv) of every process we can read.
fn processes() -> impl Iterator<Item = (u32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let argv = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some((pid, argv))
        })
}

/// Runs to the end while recording the most ssh processes and server connections seen.
fn run_counting(sandbox: &Sandbox, args: &[&str]) -> (Run, (usize, usize)) {
    let mut started = sandbox.start(args);
    let mut peak = (0, 0);
    while started.child.try_wait().unwrap().is_none() {
        let (clients, connections) = sandbox.counts();
        peak = (peak.0.max(clients), peak.1.max(connections));
        std::thread::sleep(Duration::from_millis(50));
    }
    (started.finish(Duration::from_secs(5)), peak)
}

#[test]
fn no_ssh_process_or_connection_outlives_a_run_that_succeeds_or_fails() {
    let mut sandbox = Sandbox::new("leak-exit");
    assert_eq!(sandbox.counts(), (0, 0), "the sandbox sshd starts unused");
    let (run, peak) = run_counting(&sandbox, &["deploy", "--image-ref", &shared().image("v1")]);
    run.success();
    assert!(
        peak.0 >= 1 && peak.1 >= 1,
        "the probe saw the run's connection: {peak:?}"
    );
    sandbox.assert_nothing_left("a successful deploy");
    assert_eq!(
        sandbox.leftovers(),
        vec![],
        "the private temp dir is removed"
    );
    assert_private(&sandbox.site.state_dir);

    sandbox.site.set("BLUEGREEN_HEALTH_TIMEOUT", "3s");
    let (run, peak) = run_counting(
        &sandbox,
        &["deploy", "--image-ref", &shared().image("crash")],
    );
    run.code(1);
    assert!(peak.1 >= 1, "{peak:?}");
    sandbox.assert_nothing_left("a failed deploy");
    assert_eq!(sandbox.leftovers(), vec![]);

    let (run, _) = run_counting(&sandbox, &["rollback"]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    sandbox.assert_nothing_left("a rollback");
    assert_eq!(sandbox.leftovers(), vec![]);
}

#[test]
fn no_ssh_process_or_connection_outlives_sigint_sigterm_or_sigkill() {
    let sandbox = Sandbox::new("leak-signal");
    for (name, signal) in [
        ("SIGINT", libc::SIGINT),
        ("SIGTERM", libc::SIGTERM),
        ("SIGKILL", libc::SIGKILL),
    ] {
        // The slow9 variant takes 9 s to become healthy: the run is mid-deploy when signalled.
        let started = sandbox.start(&["deploy", "--image-ref", &shared().image("slow9")]);
        let since = Instant::now();
        while !(sandbox.server_connections() >= 1 && since.elapsed() > Duration::from_secs(3)) {
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "{name}: never connected"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            sandbox.client_processes() >= 1,
            "{name}: the probe sees the master"
        );
        started.signal(signal);
        let run = started.finish(Duration::from_secs(30));
        assert_ne!(run.code, 0, "{name}: {run:?}");
        let took = sandbox.assert_nothing_left(name);
        eprintln!("{name}: ssh processes and connections gone {took:?} after exit");
        let leftovers = sandbox.leftovers();
        if signal == libc::SIGKILL {
            // SIGKILL cannot be caught: the directory may stay, but the key was deleted as
            // soon as the master authenticated, and the next run removes the directory.
            for (dir, files) in &leftovers {
                assert!(!files.contains(&"key".to_owned()), "{dir} holds the key");
            }
            sandbox.site.run(&["status"]).success();
            assert_eq!(sandbox.leftovers(), vec![], "the next run cleans up");
            sandbox.assert_nothing_left("status after SIGKILL");
        } else {
            assert_eq!(leftovers, vec![], "{name}: the private temp dir is removed");
        }
    }
}

/// Pids of `root` and all its descendants now.
fn descendants(root: u32) -> BTreeSet<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let after_name = &stat[stat.rfind(')')? + 2..];
            let ppid = after_name.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = BTreeSet::from([root]);
    loop {
        let before = found.len();
        for (pid, ppid) in &parents {
            if found.contains(ppid) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn during_a_ship_no_other_process_holds_a_secret_and_the_build_sees_none() {
    let mut sandbox = Sandbox::new("leak-ship");
    let context = sandbox.site.dir.join("src");
    std::fs::create_dir_all(&context).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-app");
    for file in ["Dockerfile", "app.sh"] {
        std::fs::copy(fixture.join(file), context.join(file)).unwrap();
    }
    std::fs::copy("/bin/busybox", context.join("busybox")).unwrap();
    let image = format!("{}/leaks/{}", shared().registry, sandbox.site.app);
    let probe = format!("probe-{}", sandbox.site.app);
    let site = &mut sandbox.site;
    site.set("BLUEGREEN_IMAGE", &image);
    site.set("BLUEGREEN_CONTEXT", context.to_str().unwrap());
    site.set("GITHUB_SHA", &"9".repeat(40));
    // Prints its whole environment, and lives long enough to be sampled.
    site.set("BLUEGREEN_BUILD_COMMAND", "env; sleep 1");
    let variables = [
        "INPUT_KEY",
        "INPUT_DOCKER_TOKEN",
        "INPUT_GITHUB_TOKEN",
        "BLUEGREEN_GITHUB_TOKEN",
        "GITHUB_TOKEN",
    ];
    for name in variables {
        site.set(name, &format!("{probe}-{name}"));
    }
    // Secrets only this test uses may appear nowhere else on the machine; the registry token
    // (shared with concurrent tests) nowhere among this run's children and its ssh master.
    let mut unique: Vec<String> = variables.iter().map(|n| format!("{probe}-{n}")).collect();
    unique.push(sandbox.key_line().to_owned());
    let bluegreen = std::fs::canonicalize(crate::support::binary()).unwrap();
    let port = sandbox.sshd.port.to_string();

    let mut started = sandbox.start(&["ship"]);
    let root = started.child.id();
    let mut seen = BTreeSet::new();
    let mut samples = 0;
    while started.child.try_wait().unwrap().is_none() {
        let family = descendants(root);
        for (pid, argv) in processes() {
            // bluegreen's own process (and a child not yet exec'd) holds the secrets by design.
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref() == Some(bluegreen.as_path()) {
                continue;
            }
            let cmdline = argv.join(" ");
            let environ = std::fs::read(format!("/proc/{pid}/environ"))
                .map(|e| String::from_utf8_lossy(&e).replace('\0', "\n"))
                .unwrap_or_default();
            let ours = family.contains(&pid) || argv.windows(2).any(|w| w == ["-p", &port]);
            if ours {
                seen.insert(comm(pid));
            }
            let registry_token = REGISTRY_TOKEN.to_owned();
            let secrets = unique.iter().chain(ours.then_some(&registry_token));
            for secret in secrets {
                assert!(
                    !cmdline.contains(secret.as_str()) && !environ.contains(secret.as_str()),
                    "pid {pid} ({}) holds a secret in its argv or environment: {cmdline}",
                    comm(pid)
                );
            }
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = started.finish(Duration::from_secs(5));
    run.success();
    eprintln!("{samples} samples; processes seen: {seen:?}");
    for expected in ["sh", "docker", "ssh"] {
        assert!(
            seen.contains(expected),
            "never sampled a {expected} child: {seen:?}"
        );
    }
    // The build printed its environment, and no secret variable was in it.
    assert!(run.stderr.contains("PATH="), "{}", run.stderr);
    for name in variables
        .iter()
        .chain(&["BLUEGREEN_KEY", "BLUEGREEN_DOCKER_TOKEN"])
    {
        assert!(
            !run.stderr.contains(&format!("| {name}=")),
            "the build saw {name}:\n{}",
            run.stderr
        );
    }
    sandbox.assert_nothing_left("a ship");
}

#[test]
fn another_user_polling_the_temp_dir_never_reads_the_key() {
    let sandbox = Sandbox::new("leak-nobody");
    let tmp = sandbox.tmp.path().display().to_string();
    let stop = sandbox.tmp.path().join("stop-polling");
    let script = format!(
        "n=0; while [ ! -e {stop} ]; do n=$((n+1)); \
         for f in {tmp}/bluegreen-ssh*/* {tmp}/bluegreen-ssh*/.*/*; do cat \"$f\" 2>/dev/null; done; \
         done; echo polls=$n",
        stop = stop.display()
    );
    let poller = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Meanwhile, as root, record the private directory's mode whenever it exists.
    let mut modes = BTreeSet::new();
    for _ in 0..3 {
        let mut started = sandbox.start(&["status"]);
        while started.child.try_wait().unwrap().is_none() {
            for entry in std::fs::read_dir(sandbox.tmp.path()).unwrap().flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("bluegreen-ssh")
                {
                    if let Ok(meta) = entry.metadata() {
                        modes.insert(meta.permissions().mode() & 0o7777);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        started.finish(Duration::from_secs(5)).success();
    }
    File::create(&stop).unwrap();
    let output = poller.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let polls: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("polls="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(polls > 20, "the poller barely ran: {text}");
    assert_eq!(
        modes,
        BTreeSet::from([0o700]),
        "the private dir was seen with these modes"
    );
    assert!(
        !text.contains(sandbox.key_line()) && !text.contains("PRIVATE KEY"),
        "user nobody read the key"
    );
    sandbox.assert_nothing_left("three status runs");
}

/// Lines the Actions runner would read as workflow commands: `::name…` at the (trimmed)
/// start, or `##[` anywhere.
fn workflow_commands(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
        .collect()
}

/// Asserts every workflow command in `log` is one bluegreen issues itself.
#[track_caller]
fn assert_only_our_commands(log: &str) {
    let stop_tokens: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("::stop-commands::"))
        .collect();
    for line in workflow_commands(log) {
        let name = line
            .trim_start()
            .trim_start_matches("::")
            .split([':', ' '])
            .next()
            .unwrap_or("");
        let ours = [
            "add-mask",
            "group",
            "endgroup",
            "warning",
            "notice",
            "error",
            "stop-commands",
        ]
        .contains(&name)
            || stop_tokens.contains(&name);
        assert!(ours, "a workflow command that is not ours: {line}\n{log}");
    }
}

#[test]
fn a_crafted_lock_json_and_container_log_issue_no_workflow_command() {
    let mut sandbox = Sandbox::new("leak-inject");
    let site = &mut sandbox.site;
    site.set("GITHUB_ACTIONS", "true");
    site.set("BLUEGREEN_LOCK_TIMEOUT", "2s");
    // A lock held on the server by someone whose lock.json is crafted.
    std::fs::create_dir_all(&site.state_dir).unwrap();
    let holder = serde_json::json!({
        "server_pid": 1,
        "holder": {
            "who": "mallory\n::set-output name=pwned::1\r::add-mask::x",
            "image": "##[set-output name=y;]z",
            "since": "now",
            "client_pid": 1
        }
    });
    std::fs::write(site.state_dir.join("lock.json"), format!("{holder}\n")).unwrap();
    // The sleeping process itself holds the lock, so killing it frees the lock.
    let mut holder_process = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 9>>"$1/lock"; flock 9; exec sleep 60"#)
        .arg("holder")
        .arg(&site.state_dir)
        .spawn()
        .unwrap();
    let lock_file = site.state_dir.join("lock");
    crate::support::wait_until("the holder takes the lock", Duration::from_secs(30), || {
        !Command::new("flock")
            .arg("-n")
            .arg(&lock_file)
            .arg("true")
            .status()
            .unwrap()
            .success()
    });
    let waited = site.deploy("v1");
    waited.code(3);
    let log = format!("{}{}", waited.stdout, waited.stderr);
    assert!(
        log.contains(": :set-output name=pwned::1"),
        "the holder was shown: {log}"
    );
    assert!(log.contains("## [set-output"), "{log}");
    assert_only_our_commands(&log);
    let status = site.run(&["status"]);
    status.success();
    assert!(status.stdout.contains("mallory"), "{}", status.stdout);
    assert_only_our_commands(&format!("{}{}", status.stdout, status.stderr));
    let _ = holder_process.kill();
    let _ = holder_process.wait();

    // A container whose log says the same things.
    site.set("BLUEGREEN_HEALTH_TIMEOUT", "3s");
    site.set(
        "BLUEGREEN_RUN_ARGS",
        "--env\nDEMO_SAY=::set-output name=pwned::2\\r##[set-output name=w;]v\\n  ::error::fake",
    );
    let failed = site.deploy("sick");
    failed.code(1);
    let log = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        log.contains(": :set-output name=pwned::2"),
        "the log was shown: {log}"
    );
    assert!(log.contains("## [set-output name=w;]v") && log.contains(": :error::fake"));
    assert_only_our_commands(&log);
    let stops: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("::stop-commands::"))
        .collect();
    assert!(
        !stops.is_empty(),
        "container logs are inside stop-commands: {log}"
    );
    for token in stops {
        assert!(token.len() >= 32, "{token}");
        assert!(
            log.contains(&format!("\n::{token}::\n")),
            "commands resume: {log}"
        );
    }
    sandbox.assert_nothing_left("the injection runs");
}

#[test]
fn the_deployment_status_sent_to_github_carries_no_secret() {
    let site = Site::new("leak-status");
    let github = FakeGitHub::start("ahead");
    let (mut command, _outputs, summary) =
        crate::action::action_command(&site, &github, &"3".repeat(40), "300", "s1");
    // A build that prints the registry token (given literally) and fails.
    command.env(
        "INPUT_BUILD_COMMAND",
        format!("echo t={REGISTRY_TOKEN}; exit 7"),
    );
    let run = Run::from(command.output().unwrap());
    run.code(1);
    let statuses: Vec<serde_json::Value> = github
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/statuses"))
        .map(|(_, _, body)| body)
        .collect();
    let failure = statuses
        .iter()
        .find(|s| s["state"] == "failure")
        .unwrap_or_else(|| panic!("no failure status: {statuses:?}"));
    let description = failure["description"].as_str().unwrap();
    assert!(description.contains("***"), "{description}");
    for status in &statuses {
        assert!(!status.to_string().contains(REGISTRY_TOKEN), "{status}");
    }
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(!summary.contains(REGISTRY_TOKEN) && summary.contains("***"));
}

/// `dir` is 0700 and every file in it 0600.
#[track_caller]
fn assert_private(dir: &Path) {
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("history.jsonl")),
        "{files:?}"
    );
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn secret_flags_are_refused_naming_the_variable_to_use() {
    let site = Site::new("leak-flags");
    for (flag, variable) in [
        ("--key", "BLUEGREEN_KEY"),
        ("--docker-token", "BLUEGREEN_DOCKER_TOKEN"),
        ("--github-token", "BLUEGREEN_GITHUB_TOKEN"),
    ] {
        let run = site.run(&["status", flag, "s3cret-on-argv"]);
        run.code(2);
        let last = run.last_line();
        assert!(
            last.contains(flag) && last.contains(&format!("set {variable} in the environment")),
            "{last}"
        );
        assert!(!run.stderr.contains("s3cret-on-argv"), "{}", run.stderr);
    }
}
