//! Helpers for unit tests only.

use crate::settings::{Config, Needs, RawSettings, Sources};

pub const KNOWN_HOSTS: &str =
    "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKk3TwExampleExampleExample";
pub const KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

pub fn raw(pairs: &[(&str, &str)]) -> RawSettings {
    let mut sources = Sources::default();
    sources.flags.insert("host".into(), "127.0.0.1".into());
    sources.flags.insert("key".into(), KEY.into());
    sources
        .flags
        .insert("known_hosts".into(), KNOWN_HOSTS.into());
    for (name, value) in pairs {
        sources.flags.insert((*name).into(), (*value).into());
    }
    RawSettings::gather(&sources).unwrap()
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_raw(&raw(pairs), Needs::Image).unwrap()
}
pub mod fake_host;
pub mod fake_os;
pub mod scripts;

/// A directory holding only `tools` (links to this machine's), to run a server script as on a
/// server that lacks the others (`ss`, say).
pub fn path_with_only(tools: &[&str]) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    for tool in tools {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| std::path::Path::new(dir).join(tool))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("no {tool} on this machine"));
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    bin
}

/// Runs a server command here, as this user; `path`: the only directory of its PATH (`None`:
/// this machine's). Returns its stdout.
pub fn run_here(command: &crate::server::ServerCommand, path: Option<&std::path::Path>) -> String {
    run_here_with_sudo(command, path, false)
}

/// [`run_here`], with `sudo -n` in front of a privileged command when `sudo`.
pub fn run_here_with_sudo(
    command: &crate::server::ServerCommand,
    path: Option<&std::path::Path>,
    sudo: bool,
) -> String {
    let output = run_here_output(command, path, sudo);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a server command here as [`run_here_with_sudo`] does, giving it the command's stdin
/// (text, secret or file), whatever its exit status.
pub fn run_here_output(
    command: &crate::server::ServerCommand,
    path: Option<&std::path::Path>,
    sudo: bool,
) -> std::process::Output {
    use crate::server::Stdin;
    use std::io::Write;
    let argv = command.final_argv(sudo);
    let mut process = std::process::Command::new(&argv[0]);
    if let Some(path) = path {
        process.env("PATH", path);
    }
    let input: &[u8] = match &command.stdin {
        Stdin::None => b"",
        Stdin::Text(text) => text.as_bytes(),
        Stdin::Secret(secret) => secret.expose().as_bytes(),
        Stdin::Bytes(bytes) => bytes,
    };
    let mut child = process
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A script that does not read its stdin may exit first: the pipe is then closed.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// How long a test waits for a fact about this machine before it fails: generous, since a
/// loaded 2-core machine can take seconds for what takes milliseconds alone. Polling returns as
/// soon as the fact holds, so a long deadline costs nothing when things go well.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Polls `fact` until it holds; panics naming `what` when it has not after [`DEADLINE`].
pub fn wait_for(what: &str, mut fact: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !fact() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited {DEADLINE:?} for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether `ss -tnH ARGS…` lists at least one socket.
pub fn ss_lists(args: &[&str]) -> bool {
    let output = std::process::Command::new("ss")
        .arg("-tnH")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "ss {args:?}: {output:?}");
    !output.stdout.is_empty()
}

/// A process a test started, killed when the test ends (passing or not), so a failed
/// assertion leaves nothing running.
pub struct Child(pub std::process::Child);

impl Child {
    pub fn spawn(command: &mut std::process::Command) -> Child {
        Child(command.spawn().unwrap())
    }

    /// How it ended; fails the test when it still runs after [`DEADLINE`].
    pub fn ended(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        wait_for("the process to end", || {
            status = self.0.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process group a server script started here (a color's `setsid` group), killed when the
/// test ends.
pub struct Group(pub u32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals that group; it touches no memory.
        unsafe { libc::kill(-(self.0 as i32), libc::SIGKILL) };
    }
}

/// Loads an nft script into this machine's real ruleset (`sudo -n nft -f -`: the tests run as
/// root, or as a user with passwordless sudo).
pub fn load_nft(script: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("sudo")
        .args(["-n", "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft -f failed:\n{script}");
}

/// The supervisor's pid in the start script's answer `started PID`.
pub fn started_pid(answer: &str) -> u32 {
    answer
        .trim()
        .strip_prefix("started ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("not a start script's answer: {answer:?}"))
}
