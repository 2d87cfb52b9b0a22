//! A fake operating system for the fault matrix: a directory that is a server's filesystem
//! (HOME and working directory of every command), with a `bin/` of stand-in executables
//! (`docker`, `nginx`, `nft`, `ss`, `java`, written in sh, in `fake_os/bin/`) placed first on
//! PATH. The stand-ins keep their state in files under `os/` and misbehave on demand (a knob: a
//! file under `os/knobs/`); the real server scripts run on top of them, with the real `sh`,
//! `flock`, `awk`… of this machine. [`host::FakeOsHost`] runs bluegreen's commands there; the
//! facts the invariants read (what nginx routes to, which containers run, the lock, state.json)
//! come from the same files. Names: the *machine* is one such directory; *serving* is what a
//! request through nginx reaches.

mod foreign;
pub mod host;
mod network;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use host::{FakeOsHost, FaultKind};

/// nginx's port: requests to it are routed by what nginx loaded (and the DNAT rules).
pub const NGINX_PORT: u16 = 80;
/// The switch file, relative to the machine's root (every command runs there).
pub const SWITCH: &str = "etc/nginx/service-url.inc";
/// The state directory as configured (`~` is the machine's root).
pub const STATE_DIR: &str = "~/state";

const STAND_INS: [(&str, &str); 5] = [
    ("docker", include_str!("bin/docker.sh")),
    ("nginx", include_str!("bin/nginx.sh")),
    ("nft", include_str!("bin/nft.sh")),
    ("ss", include_str!("bin/ss.sh")),
    ("java", include_str!("bin/java.sh")),
];

/// The commands of this machine the fake one may use (links in its `tools/`): plain file and
/// text tools. Never `docker`, `nginx`, `nft`, `ss`, `systemctl`, `sudo`, `nsenter`: a real
/// one of those must never run from the matrix.
const TOOLS: [&str; 41] = [
    "sh", "awk", "sed", "cat", "head", "tail", "tr", "mktemp", "rm", "mv", "chmod", "chown",
    "find", "grep", "wc", "cut", "date", "sleep", "setsid", "flock", "touch", "mkdir", "ls",
    "readlink", "dirname", "basename", "id", "df", "cp", "sort", "uniq", "printf", "kill", "env",
    "true", "false", "test", "xargs", "stat", "timeout", "ln",
];

fn link_tools(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for tool in TOOLS {
        let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {tool} on this machine"));
        std::os::unix::fs::symlink(found, dir.join(tool)).unwrap();
    }
}

/// A container as the stand-in `docker` keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub image_ref: String,
    pub running: bool,
    pub port: u16,
    pub app: String,
    pub color: String,
}

/// An image of the fake registry (process mode: a release, by its reference).
#[derive(Clone, Debug)]
pub struct Image {
    pub tag_ref: String,
    pub digest_ref: String,
    pub healthy: bool,
    /// Every this many requests through nginx answers 500 (0: never); health probes pass.
    pub errors_every: u64,
}

/// One fake server: its directory and what bluegreen ran on it.
pub struct FakeOs {
    root: tempfile::TempDir,
    /// Commands run, rendered without sudo.
    pub log: Vec<String>,
    /// Those of them run with sudo, rendered without it.
    pub privileged: Vec<String>,
    /// No temporary directory for a batch: every batch says it could not start.
    pub no_batch_dir: bool,
    /// Requests each port accepted (for `errors_every`).
    accepted: BTreeMap<u16, u64>,
    /// A lock holder still ran well after its run ended.
    pub lock_outlived: bool,
}

impl Drop for FakeOs {
    /// Stops what process mode started here: each app's process group (its supervisor too).
    /// A copy runs processes of its own, never the original's.
    fn drop(&mut self) {
        let Ok(apps) = std::fs::read_dir(self.path("os/apps")) else {
            return;
        };
        for app in apps.flatten() {
            let Ok(pid) = app.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // SAFETY: plain syscalls on a pid this machine's stand-in `java` wrote.
            unsafe {
                let group = libc::getpgid(pid);
                if group > 1 && network::alive(pid) {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
        }
    }
}

impl Clone for FakeOs {
    /// A copy of the machine's files, without the original's processes (see
    /// [`FakeOs::forget_processes`]). Each case starts from one.
    fn clone(&self) -> FakeOs {
        let copy = FakeOs {
            root: tempfile::tempdir().expect("a temporary directory"),
            log: self.log.clone(),
            privileged: self.privileged.clone(),
            no_batch_dir: self.no_batch_dir,
            accepted: self.accepted.clone(),
            lock_outlived: self.lock_outlived,
        };
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(self.root.path().join("."))
            .arg(copy.root.path())
            .status()
            .expect("cp runs");
        assert!(status.success(), "copying the fake machine failed");
        copy.forget_processes();
        copy
    }
}

impl FakeOs {
    /// An empty server: no containers, no switch file, nginx loaded nothing; the registry holds
    /// nothing yet ([`FakeOs::push_image`]).
    pub fn new() -> FakeOs {
        let root = tempfile::tempdir().expect("a temporary directory");
        for dir in [
            "bin",
            "os/knobs",
            "os/containers",
            "os/nginx",
            "os/nft",
            "os/ss",
            "tmp",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::create_dir_all(root.path().join(SWITCH).parent().unwrap()).unwrap();
        std::fs::write(root.path().join("os/nginx/switch_path"), SWITCH).unwrap();
        link_tools(&root.path().join("tools"));
        let os = FakeOs {
            root,
            log: Vec::new(),
            privileged: Vec::new(),
            no_batch_dir: false,
            accepted: BTreeMap::new(),
            lock_outlived: false,
        };
        for (name, _) in STAND_INS {
            os.install(name);
        }
        // nginx's listener: a live process that is not nginx's master and has no workers
        // shutting down (this test process), so the drain finds no old workers to wait for.
        os.add_listener("0.0.0.0", NGINX_PORT, std::process::id(), "nginx");
        os
    }

    /// Puts the stand-in `name` (back) on the machine's PATH.
    pub fn install(&self, name: &str) {
        let (_, text) = STAND_INS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no stand-in {name}"));
        let path = self.path("bin").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{text}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Removes the stand-in `name`: the server has no such command (`command -v` fails).
    pub fn uninstall(&self, name: &str) {
        std::fs::remove_file(self.path("bin").join(name)).unwrap();
    }

    /// Runs `command` here and now, as [`FakeOsHost`] does (no faults): for a test's setup.
    pub fn run_now(&self, command: &crate::server::ServerCommand) -> std::process::Output {
        use std::io::Write;
        let argv = command.final_argv(false);
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(self.root())
            .env("PATH", self.search_path())
            .env("HOME", self.root())
            .env("TMPDIR", self.path("tmp"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the command starts");
        let input = match &command.stdin {
            crate::server::Stdin::Text(text) => text.as_bytes().to_vec(),
            crate::server::Stdin::Secret(secret) => secret.expose().as_bytes().to_vec(),
            crate::server::Stdin::Bytes(bytes) => bytes.clone(),
            crate::server::Stdin::None => Vec::new(),
        };
        let _ = child.stdin.take().expect("stdin").write_all(&input);
        child.wait_with_output().expect("the command ends")
    }

    /// The machine's PATH: its stand-ins, then [`TOOLS`] only.
    pub fn search_path(&self) -> String {
        format!(
            "{}:{}",
            self.path("bin").display(),
            self.path("tools").display()
        )
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// A file of the machine, relative to its root (`None`: absent).
    pub fn read(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(self.path(relative)).ok()
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Sets a knob (`fail`, `hang`, `slow SECONDS`, or a flag's presence) read by the stand-ins.
    pub fn knob(&self, name: &str, value: &str) {
        self.write(&format!("os/knobs/{name}"), &format!("{value}\n"));
    }

    /// Adds `tag_ref` to the registry with a digest and an id of its own.
    pub fn push_image(&self, tag_ref: &str, healthy: bool) {
        let n = self.registry().len() + 1;
        let repo = crate::engine::deploy::repository_of(tag_ref);
        let digest = format!("{repo}@sha256:{}", &format!("{n:x}").repeat(64)[..64]);
        let id = format!("sha256:{}", &format!("{:x}", n + 100).repeat(64)[..64]);
        self.add_image(tag_ref, &digest, &id, healthy);
    }

    /// Adds an image (or, in process mode, a release) under exactly these names.
    pub fn add_image(&self, tag_ref: &str, digest_ref: &str, id: &str, healthy: bool) {
        let mut registry = self.read("os/registry").unwrap_or_default();
        registry.push_str(&format!("{tag_ref} {digest_ref} {id} {healthy} 0\n"));
        self.write("os/registry", &registry);
    }

    /// Makes every `every`-th request through nginx to `tag_ref`'s image answer 500.
    pub fn set_errors_every(&self, tag_ref: &str, every: u64) {
        let registry: String = self
            .read("os/registry")
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
                if words[0] == tag_ref {
                    words[4] = every.to_string();
                }
                words.join(" ") + "\n"
            })
            .collect();
        self.write("os/registry", &registry);
    }

    pub fn registry(&self) -> Vec<Image> {
        self.read("os/registry")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split(' ').collect();
                Some(Image {
                    tag_ref: words.first()?.to_string(),
                    digest_ref: words.get(1)?.to_string(),
                    healthy: *words.get(3)? == "true",
                    errors_every: words.get(4)?.parse().ok()?,
                })
            })
            .collect()
    }

    pub fn digest_of(&self, tag_ref: &str) -> String {
        self.registry()
            .into_iter()
            .find(|image| image.tag_ref == tag_ref)
            .unwrap_or_else(|| panic!("{tag_ref} is not in the fake registry"))
            .digest_ref
    }

    /// The containers the stand-in `docker` keeps, by name.
    pub fn containers(&self) -> BTreeMap<String, Container> {
        let mut found = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(self.path("os/containers")) else {
            return found;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let field = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            found.insert(
                entry.file_name().to_string_lossy().into_owned(),
                Container {
                    image_ref: field("image"),
                    running: dir.join("running").exists(),
                    port: field("port").parse().unwrap_or(0),
                    app: field("app"),
                    color: field("color"),
                },
            );
        }
        found
    }

    /// A container as if `docker run` had started it (an old script's, or another app's).
    pub fn add_container(&self, name: &str, container: &Container) {
        let dir = format!("os/containers/{name}");
        self.write(
            &format!("{dir}/image"),
            &format!("{}\n", container.image_ref),
        );
        self.write(&format!("{dir}/port"), &format!("{}\n", container.port));
        self.write(&format!("{dir}/app"), &format!("{}\n", container.app));
        self.write(&format!("{dir}/color"), &format!("{}\n", container.color));
        self.write(&format!("{dir}/label_image"), "\n");
        if container.running {
            self.write(&format!("{dir}/running"), "");
        }
        let line = format!(
            "{0} {0} sha256:{1} true 0\n",
            container.image_ref,
            "e".repeat(64)
        );
        let pulled = self.read("os/pulled").unwrap_or_default() + &line;
        self.write("os/pulled", &pulled);
    }

    /// The DNAT rules of every nft table: (table, service port, target port).
    pub fn dnat_rules(&self) -> Vec<(String, u16, u16)> {
        let mut rules = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.path("os/nft")) else {
            return rules;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let words: Vec<&str> = text.split_whitespace().collect();
            let after = |word: &str| {
                let at = words.iter().position(|w| *w == word)?;
                words.get(at + 1).copied()
            };
            let service = after("dport").and_then(|p| p.parse().ok());
            let target = after("to").and_then(|a| a.rsplit(':').next()?.parse().ok());
            if let (Some(service), Some(target)) = (service, target) {
                rules.push((entry.file_name().to_string_lossy().into(), service, target));
            }
        }
        rules
    }

    /// The port a request through nginx reaches: the port of the switch nginx loaded, then the
    /// first DNAT rule for it (the first NAT binding wins, as in the kernel).
    pub fn routed_port(&self) -> Option<u16> {
        let loaded = self.read("os/nginx/loaded")?;
        let at = loaded.rfind(':')?;
        let port: u16 = loaded[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()?;
        Some(
            self.dnat_rules()
                .into_iter()
                .find(|(_, service, _)| *service == port)
                .map_or(port, |(_, _, target)| target),
        )
    }

    /// Whether the deploy lock of the state directory is held by a process.
    pub fn lock_held(&self) -> bool {
        if self.lock_outlived {
            return true;
        }
        let lock = self.path("state/lock");
        if !lock.exists() {
            return false;
        }
        !std::process::Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .arg("true")
            .status()
            .expect("flock runs")
            .success()
    }

    pub fn state(&self) -> serde_json::Value {
        self.read("state/state.json")
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn history_len(&self) -> usize {
        self.read("state/history.jsonl")
            .map_or(0, |h| h.lines().count())
    }

    /// The newest history entry.
    pub fn last_history_entry(&self) -> serde_json::Value {
        let history = self.read("state/history.jsonl").expect("a history");
        serde_json::from_str(history.lines().last().expect("an entry")).unwrap()
    }

    /// A first reading of the connections left in the machine's temporary directory.
    pub fn leftover_reading(&self) -> bool {
        std::fs::read_dir(self.path("tmp")).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .contains("bluegreen-connections.")
            })
        })
    }

    /// A listening socket the stand-in `ss` shows while `pid` lives.
    pub fn add_listener(&self, address: &str, port: u16, pid: u32, command: &str) {
        let listen = self.read("os/ss/listen").unwrap_or_default()
            + &format!("{address} {port} {pid} {command}\n");
        self.write("os/ss/listen", &listen);
    }

    /// What serves through nginx: (port, image) of a running, healthy container, or in process
    /// mode of the live app listening on the port.
    pub fn serving(&self) -> Option<(u16, String)> {
        let port = self.routed_port()?;
        let image_ref = network::app_on(self, port)?;
        let image = self
            .registry()
            .into_iter()
            .find(|i| i.digest_ref == image_ref)?;
        image.healthy.then_some((port, image_ref))
    }
}

impl Default for FakeOs {
    fn default() -> Self {
        FakeOs::new()
    }
}
