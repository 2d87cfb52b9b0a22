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
    let argv = command.final_argv(sudo);
    let mut process = std::process::Command::new(&argv[0]);
    if let Some(path) = path {
        process.env("PATH", path);
    }
    let output = process.args(&argv[1..]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}
