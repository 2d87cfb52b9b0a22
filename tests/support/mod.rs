//! The real-server sandbox the integration tests and the demo run against, all on loopback:
//! OpenSSH's sshd (generated host and user keys, strict host key checking), a private
//! `docker-registry` with htpasswd auth, the machine's Docker engine, and one nginx per site.
//! Nothing here is faked.

#![allow(dead_code)]

pub mod action_image;
pub mod ec2;
pub mod github;
pub mod java;
pub mod load;
pub mod runner;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub const REGISTRY_USER: &str = "deployer";
pub const REGISTRY_TOKEN: &str = "tok-9f8e7d6c5b4a";

/// A port nothing listens on, never handed out twice, and below the kernel's range for
/// outgoing connections (`ip_local_port_range`, 32768–60999 by default). Two failures taught
/// this: the kernel handed a released port out again (one site's nginx port was another's
/// green port), and an outgoing connection took a "free" port before Docker's proxy bound it.
pub fn free_port() -> u16 {
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let (low, high) = below_outgoing_ports();
    let mut next = NEXT.lock().unwrap();
    // Start at a place of its own per process, so concurrent test processes rarely meet.
    let mut port = next.unwrap_or(low + (std::process::id() % 50) as u16 * 100);
    loop {
        if port >= high {
            port = low;
        }
        let candidate = port;
        port += 1;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return candidate;
        }
    }
}

/// The ports to hand out: from 20000 up to the start of the outgoing range.
fn below_outgoing_ports() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let high = start.max(25000);
    (20000.min(high - 5000), high)
}

/// Runs a setup command; panics with its output when it fails.
pub fn sh(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Daemons die with the test process (PR_SET_PDEATHSIG), so a failed run leaves nothing behind.
fn spawn_daemon(command: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Polls `done` every 50 ms; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The child's exit, which must come within `timeout` (a test fails instead of hanging).
pub fn exit_within(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("the process exits", timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// A container an old deploy script started (no bluegreen labels), serving v1 on the blue
/// port; removed when dropped, also under the name a migration renames it to.
pub struct OldScriptContainer {
    pub name: String,
}

impl OldScriptContainer {
    pub fn start(site: &Site, name: &str) -> OldScriptContainer {
        sh(Command::new("docker").args([
            "run",
            "--detach",
            "--name",
            name,
            "--publish",
            &format!("127.0.0.1:{}:8080", site.blue_port),
            "--env",
            "BLUEGREEN_COLOR=blue",
            &shared().image("v1"),
        ]));
        wait_for_port(site.blue_port, "the old script's container");
        OldScriptContainer {
            name: name.to_owned(),
        }
    }
}

impl Drop for OldScriptContainer {
    fn drop(&mut self) {
        let renamed = format!("{}-before-bluegreen", self.name);
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name, &renamed])
            .output();
    }
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What every site shares: sshd, the registry and the demo images in it.
pub struct Shared {
    pub dir: PathBuf,
    pub ssh_port: u16,
    pub known_hosts: String,
    pub user_key: PathBuf,
    pub registry: String,
    pub repo: String,
}

impl Shared {
    pub fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo)
    }
}

pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Daemons are spawned from a thread that lives as long as the process: PDEATHSIG fires
        // when the spawning *thread* ends.
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let (shared, children) = start_shared();
            sender.send(shared).unwrap();
            let _keep = children;
            loop {
                std::thread::park();
            }
        });
        receiver
            .recv()
            .expect("sandbox failed to start (see the panic above)")
    })
}

fn start_shared() -> (Shared, Vec<Child>) {
    let dir = tempfile::Builder::new()
        .prefix("bluegreen-sandbox")
        .tempdir()
        .unwrap()
        .keep();
    let (ssh_port, known_hosts, user_key, sshd) = start_sshd(&dir);
    let (registry, registry_child) = start_registry(&dir);
    let repo = format!("{registry}/demo/app");
    build_and_push_demo_images(&dir, &registry, &repo);
    (
        Shared {
            dir,
            ssh_port,
            known_hosts,
            user_key,
            registry,
            repo,
        },
        vec![sshd, registry_child],
    )
}

fn start_sshd(dir: &Path) -> (u16, String, PathBuf, Child) {
    std::fs::create_dir_all("/run/sshd").unwrap();
    let host_key = dir.join("host_ed25519");
    let user_key = dir.join("user_ed25519");
    for key in [&host_key, &user_key] {
        sh(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(key));
    }
    std::fs::copy(dir.join("user_ed25519.pub"), dir.join("authorized_keys")).unwrap();
    let (port, known_hosts, child) = sshd_instance(dir, "sshd");
    (port, known_hosts, user_key, child)
}

/// A server's deploy user: a stock home (Debian's `.bashrc` returns at once when not
/// interactive), passwordless `sudo`, the sandbox's user key.
pub const DEPLOY_USER: &str = "bluegreen-deploy";

fn ensure_deploy_user() {
    use std::os::unix::fs::PermissionsExt;
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let exists = Command::new("id")
            .arg(DEPLOY_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if !exists {
            sh(Command::new("useradd").args([
                "--create-home",
                "--shell",
                "/bin/bash",
                DEPLOY_USER,
            ]));
        }
        // No password, but not locked (sshd refuses locked accounts).
        sh(Command::new("usermod").args(["-p", "*", DEPLOY_USER]));
        let sudoers = format!("/etc/sudoers.d/{DEPLOY_USER}");
        std::fs::write(&sudoers, format!("{DEPLOY_USER} ALL=(ALL) NOPASSWD: ALL\n")).unwrap();
        std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440)).unwrap();
        let ssh_dir = format!("/home/{DEPLOY_USER}/.ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        let key = shared().user_key.with_extension("pub");
        std::fs::copy(key, format!("{ssh_dir}/authorized_keys")).unwrap();
        sh(Command::new("chown").args(["-R", &format!("{DEPLOY_USER}:"), &ssh_dir]));
    });
}

/// An sshd on a new port with the sandbox's keys; `name` keeps its files apart.
fn sshd_instance(dir: &Path, name: &str) -> (u16, String, Child) {
    let host_key = dir.join("host_ed25519");
    let port = free_port();
    let config = dir.join(format!("{name}_config"));
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {} .ssh/authorized_keys\n\
             StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nMaxSessions 200\nMaxStartups 200:30:400\n\
             AllowTcpForwarding yes\nLogLevel VERBOSE\n",
            host_key.display(),
            dir.join(format!("{name}.pid")).display(),
            dir.join("authorized_keys").display()
        ),
    )
    .unwrap();
    let child = spawn_daemon(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config),
        &dir.join(format!("{name}.log")),
    );
    wait_for_port(port, "sshd");
    let public = std::fs::read_to_string(dir.join("host_ed25519.pub")).unwrap();
    let mut fields = public.split_whitespace();
    let known_hosts = format!(
        "[127.0.0.1]:{port} {} {}\n",
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    (port, known_hosts, child)
}

/// A second sshd only one test uses, so it can cut that test's connections and no others.
pub struct PrivateSshd {
    pub port: u16,
    pub known_hosts: String,
    child: Child,
}

impl PrivateSshd {
    pub fn start(name: &str) -> PrivateSshd {
        let (port, known_hosts, child) = sshd_instance(&shared().dir, name);
        PrivateSshd {
            port,
            known_hosts,
            child,
        }
    }

    /// Kills every session process of this sshd: each client's TCP connection is cut.
    pub fn cut_connections(&self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> (String, Child) {
    let port = free_port();
    let htpasswd = sh(Command::new("htpasswd").args(["-Bbn", REGISTRY_USER, REGISTRY_TOKEN]));
    std::fs::write(dir.join("htpasswd"), htpasswd).unwrap();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: bluegreen-sandbox\n    path: {}\n",
            dir.join("registry-data").display(),
            dir.join("htpasswd").display()
        ),
    )
    .unwrap();
    let child = spawn_daemon(
        Command::new("docker-registry").arg("serve").arg(&config),
        &dir.join("registry.log"),
    );
    wait_for_port(port, "docker-registry");
    (format!("127.0.0.1:{port}"), child)
}

/// Docker client settings private to the sandbox (credentials never touch ~/.docker).
pub fn docker(dir: &Path) -> Command {
    let mut command = Command::new("docker");
    command.env("DOCKER_CONFIG", dir.join("docker-config"));
    command
}

/// The demo variants, by tag.
pub const VARIANTS: &[(&str, &[&str])] = &[
    ("v1", &["VERSION=v1"]),
    ("v2", &["VERSION=v2"]),
    ("v3", &["VERSION=v3"]),
    ("sick", &["VERSION=sick", "MODE=sick"]),
    ("crash", &["VERSION=crash", "MODE=crash"]),
    ("slow", &["VERSION=slow", "MODE=slow", "START_DELAY=3"]),
    ("slow9", &["VERSION=slow9", "MODE=slow", "START_DELAY=9"]),
];

fn build_and_push_demo_images(dir: &Path, registry: &str, repo: &str) {
    let context = dir.join("demo-app");
    std::fs::create_dir_all(&context).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-app");
    for file in ["Dockerfile", "app.sh"] {
        std::fs::copy(fixture.join(file), context.join(file)).unwrap();
    }
    std::fs::copy("/bin/busybox", context.join("busybox"))
        .expect("busybox-static must be installed");
    let mut login = docker(dir);
    login
        .args([
            "login",
            "--username",
            REGISTRY_USER,
            "--password-stdin",
            registry,
        ])
        .stdin(Stdio::piped());
    login.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(REGISTRY_TOKEN.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (tag, args) in VARIANTS {
        let mut build = docker(dir);
        build.args(["build", "--quiet", "--tag", &format!("{repo}:{tag}")]);
        for arg in *args {
            build.args(["--build-arg", arg]);
        }
        sh(build.arg(&context).env("DOCKER_BUILDKIT", "0"));
        sh(docker(dir).args(["push", "--quiet", &format!("{repo}:{tag}")]));
    }
}

/// The binary under test: Cargo names it for tests; the demo (an example) finds it beside itself.
pub fn binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_bluegreen") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("bluegreen"))
        .unwrap()
}

static SITES: AtomicUsize = AtomicUsize::new(0);

/// One app on the sandbox server: its own nginx, ports, names and state directory.
pub struct Site {
    pub dir: PathBuf,
    pub app: String,
    pub nginx_port: u16,
    pub blue_port: u16,
    pub green_port: u16,
    pub switch_file: PathBuf,
    pub state_dir: PathBuf,
    nginx: Child,
    pub env: Vec<(String, String)>,
}

impl Site {
    pub fn new(name: &str) -> Site {
        let shared = shared();
        let index = SITES.fetch_add(1, Ordering::Relaxed);
        let app = format!("bgt-{name}-{}-{index}", std::process::id());
        let dir = shared.dir.join(&app);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let (nginx_port, blue_port, green_port) = (free_port(), free_port(), free_port());
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(&dir, nginx_port)).unwrap();
        let nginx = spawn_nginx(&dir);
        wait_for_port(nginx_port, "nginx");
        let nginx_cmd = format!(
            "/usr/sbin/nginx -p {0} -e {0}/logs/error.log -c {1}",
            dir.display(),
            conf.display()
        );
        let switch_file = dir.join("conf.d/service-url.inc");
        let state_dir = dir.join("state");
        let env = vec![
            ("BLUEGREEN_HOST", "127.0.0.1".to_owned()),
            ("BLUEGREEN_PORT", shared.ssh_port.to_string()),
            ("BLUEGREEN_USERNAME", "root".to_owned()),
            ("BLUEGREEN_KEY_FILE", shared.user_key.display().to_string()),
            ("BLUEGREEN_KNOWN_HOSTS", shared.known_hosts.clone()),
            ("BLUEGREEN_IMAGE", shared.repo.clone()),
            ("BLUEGREEN_REGISTRY", shared.registry.clone()),
            ("BLUEGREEN_DOCKER_USERNAME", REGISTRY_USER.to_owned()),
            ("BLUEGREEN_DOCKER_TOKEN", REGISTRY_TOKEN.to_owned()),
            ("BLUEGREEN_APP_NAME", app.clone()),
            ("BLUEGREEN_BLUE_PORT", blue_port.to_string()),
            ("BLUEGREEN_GREEN_PORT", green_port.to_string()),
            ("BLUEGREEN_HEALTH_PATH", "/actuator/health".to_owned()),
            ("BLUEGREEN_HEALTH_INTERVAL", "250ms".to_owned()),
            ("BLUEGREEN_HEALTH_TIMEOUT", "20s".to_owned()),
            (
                "BLUEGREEN_NGINX_SWITCH_FILE",
                switch_file.display().to_string(),
            ),
            ("BLUEGREEN_NGINX_TEST_COMMAND", format!("{nginx_cmd} -t -q")),
            (
                "BLUEGREEN_NGINX_RELOAD_COMMAND",
                format!("{nginx_cmd} -s reload"),
            ),
            (
                "BLUEGREEN_VERIFY_URL",
                format!("http://127.0.0.1:{nginx_port}/actuator/health"),
            ),
            ("BLUEGREEN_STATE_DIR", state_dir.display().to_string()),
            ("BLUEGREEN_STOP_TIMEOUT", "5s".to_owned()),
            // The nginx switch unless a test asks for another (`use_auto_switch`,
            // `use_nftables_switch`); a port of its own for the nftables one, since every
            // site's DNAT rule lives in the machine's one ruleset.
            ("BLUEGREEN_TRAFFIC_SWITCH", "nginx".to_owned()),
            ("BLUEGREEN_SERVICE_PORT", free_port().to_string()),
            ("BLUEGREEN_DRAIN_TIMEOUT", "10s".to_owned()),
            ("BLUEGREEN_LOCK_TIMEOUT", "60s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Site {
            dir,
            app,
            nginx_port,
            blue_port,
            green_port,
            switch_file,
            state_dir,
            nginx,
            env,
        }
    }

    /// The value this site gives a setting's variable (`BLUEGREEN_…`).
    pub fn setting(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("the site sets no {name}"))
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// The real binary with this site's settings in its environment (never on argv).
    pub fn bluegreen(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command.args(args).current_dir(&self.dir).env_clear();
        for key in ["PATH", "HOME", "USER"] {
            if let Ok(value) = std::env::var(key) {
                command.env(key, value);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.bluegreen(args).output().unwrap())
    }

    pub fn deploy(&self, tag: &str) -> Run {
        self.run(&["deploy", "--image-ref", &shared().image(tag)])
    }

    /// GET through this site's nginx.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        let url = format!("http://127.0.0.1:{}{path}", self.nginx_port);
        let response = reqwest::blocking::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.text().unwrap_or_default()))
    }

    /// The version and color nginx serves now.
    pub fn served(&self) -> Option<(String, String)> {
        let (status, body) = self.get("/").ok()?;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some((
            json["version"].as_str()?.to_owned(),
            json["color"].as_str()?.to_owned(),
        ))
    }

    /// Switches this site's nginx to the nftables method: nginx proxies to a fixed service
    /// port from now on (reloaded once, before any load), and bluegreen moves a DNAT rule.
    pub fn use_nftables_switch(&mut self) -> u16 {
        let service_port = free_port();
        std::fs::write(
            &self.switch_file,
            format!("set $service_url http://127.0.0.1:{service_port};\n"),
        )
        .unwrap();
        let reload = self
            .env
            .iter()
            .find(|(k, _)| k == "BLUEGREEN_NGINX_RELOAD_COMMAND")
            .unwrap()
            .1
            .clone();
        sh(Command::new("sh").args(["-c", &reload]));
        self.set("BLUEGREEN_TRAFFIC_SWITCH", "nftables");
        self.set("BLUEGREEN_SERVICE_PORT", &service_port.to_string());
        service_port
    }

    /// Deploys each `(tag, color)` in turn; each must succeed without reloading nginx and leave
    /// `tag` served by `color`.
    pub fn swap_without_reload(&self, swaps: &[(&str, &str)]) {
        for (tag, color) in swaps {
            let run = self.deploy(tag);
            run.success();
            assert!(
                !run.stderr.contains(" -s reload"),
                "this switch must not reload nginx: {}",
                run.stderr
            );
            assert_eq!(self.served(), Some(((*tag).into(), (*color).into())));
        }
    }

    /// Deploys as [`DEPLOY_USER`], a user with passwordless sudo and a stock shell profile, as
    /// on a server, instead of this machine's root (whose `.bashrc` runs `pyenv init` on every
    /// SSH command: about 115 ms each, measured). The state moves to that user's home.
    pub fn as_deploy_user(&mut self) {
        ensure_deploy_user();
        self.set("BLUEGREEN_USERNAME", DEPLOY_USER);
        self.set("BLUEGREEN_STATE_DIR", &format!("~/.bluegreen/{}", self.app));
    }

    /// The default switch (`auto`): no traffic_switch setting at all.
    pub fn use_auto_switch(&mut self) {
        self.env.retain(|(k, _)| k != "BLUEGREEN_TRAFFIC_SWITCH");
    }

    /// What the seeds' scripts leave: the include file naming the blue port, nginx restarted.
    pub fn point_nginx_at_blue_like_an_old_script(&mut self) {
        std::fs::write(
            &self.switch_file,
            format!("set $service_url http://127.0.0.1:{};\n", self.blue_port),
        )
        .unwrap();
        self.restart_nginx();
    }

    /// What `systemctl restart nginx` does: a graceful stop, then a new start.
    pub fn restart_nginx(&mut self) {
        self.stop_nginx();
        self.nginx = spawn_nginx(&self.dir);
        wait_for_port(self.nginx_port, "nginx");
    }

    /// Restarts nginx the way seed 003 runs it: with the switch file bind-mounted as a single
    /// file at a path of nginx's own (what `docker run -v /host/x.inc:/etc/nginx/x.inc` does),
    /// in a mount namespace of its own. A file replaced by rename on the host is a new inode
    /// this nginx never sees. (Mounted over its own path instead, the kernel would detach the
    /// mount on the rename, which is not what a container does.)
    pub fn restart_nginx_with_the_switch_file_bind_mounted(&mut self) {
        let inside = self.dir.join("container-conf.d");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("service-url.inc"), "").unwrap();
        let file = self.switch_file.clone();
        self.restart_nginx_like_a_container(&file, &inside.join("service-url.inc"));
    }

    /// Restarts nginx as a container would run it: `source` bind-mounted at `inside` (in a
    /// mount namespace of its own), reading `nginx.conf` with every `conf.d/` path replaced by
    /// `container-conf.d/`.
    pub fn restart_nginx_like_a_container(&mut self, source: &Path, inside: &Path) {
        self.stop_nginx();
        let dir = self.dir.display().to_string();
        let config = std::fs::read_to_string(self.dir.join("nginx.conf"))
            .unwrap()
            .replace(
                &format!("{dir}/conf.d/"),
                &format!("{dir}/container-conf.d/"),
            );
        std::fs::write(self.dir.join("nginx-container.conf"), config).unwrap();
        let script = format!(
            "mount --bind '{source}' '{inside}' && \
             exec /usr/sbin/nginx -p '{dir}' -e '{dir}/logs/error.log' -c '{dir}/nginx-container.conf'",
            source = source.display(),
            inside = inside.display()
        );
        self.nginx = spawn_daemon(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(script),
            &self.dir.join("nginx.out"),
        );
        wait_for_port(self.nginx_port, "nginx");
    }

    /// Stops this site's nginx (the site is down until `restart_nginx`).
    pub fn stop_nginx(&mut self) {
        unsafe { libc::kill(self.nginx.id() as i32, libc::SIGQUIT) };
        self.nginx.wait().unwrap();
    }

    /// The site's nftables table: `bluegreen_` + the app name made an identifier (+ a hash of
    /// the real name, which this harness does not recompute: it finds the table by prefix).
    pub fn nft_table(&self) -> String {
        let prefix = format!(
            "bluegreen_{}",
            self.app.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let tables = Command::new("nft")
            .args(["list", "tables", "ip"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        tables
            .split_whitespace()
            .find(|word| word.starts_with(&prefix))
            .map_or(prefix, str::to_owned)
    }

    pub fn container_state(&self, color: &str) -> Option<String> {
        let output = Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{.State.Status}}",
                &format!("{}-{color}", self.app),
            ])
            .output()
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub fn status_json(&self) -> serde_json::Value {
        let run = self.run(&["status", "--json"]);
        assert_eq!(run.code, 0, "status failed: {}", run.stderr);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", run.stdout))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table()])
            .output();
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=bluegreen.app={}", self.app),
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

fn spawn_nginx(dir: &Path) -> Child {
    spawn_daemon(
        Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf")),
        &dir.join("nginx.out"),
    )
}

fn nginx_conf(dir: &Path, port: u16) -> String {
    format!(
        r#"worker_processes 2;
pid {dir}/nginx.pid;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        set $service_url http://127.0.0.1:9;
        include {dir}/conf.d/*.inc;
        location / {{
            proxy_pass $service_url;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"#,
        dir = dir.display()
    )
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The impact count the run printed last: (failed, requests) from "F failed of N probe
    /// requests through nginx during the switch".
    pub fn impact(&self) -> Option<(u64, u64)> {
        let before = self
            .stderr
            .rsplit(" probe requests through nginx during the switch")
            .nth(1)?;
        let words: Vec<&str> = before.rsplit(' ').take(4).collect();
        let number = |word: &str| word.replace(',', "").parse::<u64>().ok();
        match words.as_slice() {
            [requests, "of", "failed", failed] => Some((number(failed)?, number(requests)?)),
            _ => None,
        }
    }

    /// The one line every failure ends with.
    pub fn last_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}
