//! A test server that boots like an EC2 host: a Debian bookworm container with systemd as PID
//! 1, sshd (its own generated host key, checked strictly; the test's user key for root), nginx
//! and nftables in its own network namespace. "Reboot" is `docker restart`: the kernel state
//! (nftables tables, processes) is gone and only enabled units start again. The image is built
//! once by `ec2.sh` (debootstrap + `docker import`) and cached under a tag made from that
//! script's content.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{sh, wait_until};

const RECIPE: &str = include_str!("ec2.sh");

/// The image, built when no image with this recipe's tag exists (≈ 3.5 min on this machine).
pub fn image() -> String {
    let tag = format!("bluegreen-test/ec2:{:016x}", fnv1a(RECIPE));
    let present = Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap()
        .status
        .success();
    if !present {
        sh(Command::new("sh").args(["-c", RECIPE, "ec2.sh", &tag]));
    }
    tag
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One running test server; removed when dropped.
pub struct Ec2 {
    pub container: String,
    pub ip: String,
    pub dir: PathBuf,
    pub user_key: PathBuf,
    pub known_hosts: String,
}

impl Ec2 {
    pub fn start(name: &str) -> Ec2 {
        let image = image();
        let dir = tempfile::Builder::new()
            .prefix("bluegreen-ec2")
            .tempdir()
            .unwrap()
            .keep();
        let host_key = dir.join("host_ed25519");
        let user_key = dir.join("user_ed25519");
        for key in [&host_key, &user_key] {
            sh(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(key));
        }
        let container = format!("bgt-ec2-{name}-{}", std::process::id());
        let _ = Command::new("docker")
            .args(["rm", "-f", &container])
            .output();
        sh(Command::new("docker")
            .args(["run", "-d", "--name", &container, "--hostname", name])
            .args(["--cap-add", "NET_ADMIN", "--cap-add", "SYS_ADMIN"])
            .args(["--tmpfs", "/run", "--tmpfs", "/run/lock"])
            .args(["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host"])
            .arg("-v")
            .arg(format!("{}:/etc/ssh/test_host_key:ro", host_key.display()))
            .arg("-v")
            .arg(format!(
                "{}.pub:/root/.ssh/authorized_keys:ro",
                user_key.display()
            ))
            .args([image.as_str(), "/sbin/init"]));
        let ip = address(&container);
        let public = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut fields = public.split_whitespace();
        let known_hosts = format!(
            "{ip} {} {}\n",
            fields.next().unwrap(),
            fields.next().unwrap()
        );
        let server = Ec2 {
            container,
            ip,
            dir,
            user_key,
            known_hosts,
        };
        server.wait_booted();
        server
    }

    /// Waits until systemd says the boot finished (`running`, or `degraded` when some unit a
    /// container cannot run failed) and sshd answers.
    pub fn wait_booted(&self) {
        wait_until("the test server to boot", Duration::from_secs(60), || {
            let state = self.try_exec("systemctl is-system-running 2>/dev/null; true");
            (state.contains("running") || state.contains("degraded"))
                && std::net::TcpStream::connect((self.ip.as_str(), 22)).is_ok()
        });
    }

    /// Runs `script` as root inside the server and returns its output, failing or not
    /// (diagnostics).
    pub fn inspect(&self, script: &str) -> String {
        let output = Command::new("docker")
            .args(["exec", &self.container, "sh", "-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    }

    fn try_exec(&self, script: &str) -> String {
        Command::new("docker")
            .args(["exec", &self.container, "sh", "-c", script])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Runs `script` as root inside the server (setup and inspection only, never the deploy).
    pub fn exec(&self, script: &str) -> String {
        sh(Command::new("docker").args(["exec", &self.container, "sh", "-c", script]))
    }

    /// A reboot: every process ends, the kernel's nftables tables go, systemd boots again.
    /// The address may change (Docker hands it out again at start), as an EC2 host's public
    /// one does: it is read again, and the known host entry follows it.
    pub fn reboot(&mut self) {
        sh(Command::new("docker").args(["restart", "-t", "5", &self.container]));
        let ip = address(&self.container);
        self.known_hosts = self.known_hosts.replacen(&self.ip, &ip, 1);
        self.ip = ip;
    }

    /// The settings that reach this server over SSH as root, its host key checked strictly.
    pub fn ssh_env(&self) -> Vec<(String, String)> {
        [
            ("BLUEGREEN_HOST", self.ip.clone()),
            ("BLUEGREEN_PORT", "22".to_owned()),
            ("BLUEGREEN_USERNAME", "root".to_owned()),
            ("BLUEGREEN_KEY_FILE", self.user_key.display().to_string()),
            ("BLUEGREEN_KNOWN_HOSTS", self.known_hosts.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// GET `path` from the server's nginx (port 80), from outside: status and body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::blocking::Client::new()
            .get(format!("http://{}{path}", self.ip))
            .timeout(Duration::from_secs(2))
            .send()
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().unwrap_or_default()))
    }
}

/// The container's address on Docker's bridge.
fn address(container: &str) -> String {
    sh(Command::new("docker").args([
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ]))
    .trim()
    .to_owned()
}

impl Drop for Ec2 {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.container])
            .output();
    }
}
