//! Method (f): Debian sid's nginx (≥ 1.27.4) with `keepalive_min_timeout`, in a container
//! built by `scripts/sid-nginx.sh`, serving a site in place of the machine's nginx.

use std::process::Command;

use crate::support::{sh, wait_for_port, Site};

pub const IMAGE: &str = "bluegreen-bench/nginx-sid";
pub const KEEPALIVE_MIN_TIMEOUT: &str = "5s";

pub fn available() -> bool {
    Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The container; removed when dropped.
pub struct SidNginx {
    name: String,
}

impl SidNginx {
    /// Stops the site's nginx and runs sid's on the same port and configuration (plus the
    /// directive), with the site's directory mounted as a directory (a file mount would keep
    /// the switch file's old inode after a rename), on the host network; points the site's
    /// test and reload commands at it.
    pub fn replace_nginx_of(site: &mut Site) -> SidNginx {
        site.stop_nginx();
        let dir = site.dir.display().to_string();
        let config = site.dir.join("nginx-sid.conf");
        let text = std::fs::read_to_string(site.dir.join("nginx.conf"))
            .unwrap()
            .replacen(
                "http {\n",
                &format!("http {{\n    keepalive_min_timeout {KEEPALIVE_MIN_TIMEOUT};\n"),
                1,
            );
        std::fs::write(&config, text).unwrap();
        let name = format!("{}-nginx-sid", site.app);
        let nginx = format!(
            "/usr/sbin/nginx -p {dir} -e {dir}/logs/error.log -c {}",
            config.display()
        );
        sh(Command::new("docker")
            .args(["run", "--detach", "--name", &name, "--network", "host"])
            .args(["--volume", &format!("{dir}:{dir}"), IMAGE])
            .args(nginx.split_whitespace()));
        let sid = SidNginx { name };
        wait_for_port(site.nginx_port, "sid's nginx");
        let exec = format!("docker exec {} {nginx}", sid.name);
        site.set("BLUEGREEN_NGINX_TEST_COMMAND", &format!("{exec} -t -q"));
        site.set(
            "BLUEGREEN_NGINX_RELOAD_COMMAND",
            &format!("{exec} -s reload"),
        );
        sid
    }

    pub fn version(&self) -> String {
        let output = Command::new("docker")
            .args(["exec", &self.name, "/usr/sbin/nginx", "-v"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .trim_start_matches("nginx version: ")
            .to_owned()
    }
}

impl Drop for SidNginx {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}
