//! The fake machine's network: an HTTP request to a port reaches the container that publishes
//! it (or the process mode app listening on it); through nginx's port it goes where nginx's
//! loaded switch and the DNAT rules send it. Each accepted request leaves a connection (in
//! TIME-WAIT) that the stand-in `ss` shows, as the kernel would.

use std::io::Write;

use super::FakeOs;
use crate::remote::http::{HttpGet, HttpReply};

/// The image (or release reference) of what answers on `port`, when something runs there.
pub(super) fn app_on(os: &FakeOs, port: u16) -> Option<String> {
    if let Some(container) = os
        .containers()
        .into_values()
        .find(|c| c.running && c.port == port)
    {
        return Some(container.image_ref);
    }
    let apps = std::fs::read_dir(os.path("os/apps")).ok()?;
    for app in apps.flatten() {
        let pid: i32 = app.file_name().to_string_lossy().parse().ok()?;
        let text = std::fs::read_to_string(app.path()).unwrap_or_default();
        let mut words = text.split_whitespace();
        let listens = words.next().and_then(|p| p.parse::<u16>().ok()) == Some(port);
        if listens && alive(pid) {
            return words
                .next()
                .map(|id| format!("{}{id}", crate::build::artifact::RELEASE_PREFIX));
        }
    }
    None
}

/// Whether `pid` is a process that has not exited (a zombie has).
pub(super) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit(") ").next()?.chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

/// A container that dies as soon as nginx sends a request elsewhere (knob file `dies_when_idle`
/// in its directory): the old color dying during the bake.
fn kill_idle(os: &FakeOs, routed: u16) {
    for (name, container) in os.containers() {
        let dir = os.path(&format!("os/containers/{name}"));
        if container.running && container.port != routed && dir.join("dies_when_idle").exists() {
            let _ = std::fs::remove_file(dir.join("running"));
        }
    }
}

impl FakeOs {
    /// A connection `port` accepted, as `ss` shows it (unless the port is hidden from it).
    fn accept(&mut self, port: u16) -> u64 {
        let accepted = self.accepted.entry(port).or_default();
        *accepted += 1;
        let n = *accepted;
        let mut conns = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("os/ss/conns"))
            .expect("the connection table opens");
        writeln!(conns, "TIME-WAIT 127.0.0.1 {port} 127.0.0.1 {}", 10_000 + n)
            .expect("the connection table is written");
        n
    }

    pub(super) fn http(&mut self, request: &HttpGet) -> Result<HttpReply, String> {
        let reply = |status| HttpReply {
            status,
            color_header: None,
            body: r#"{"status":"UP"}"#.into(),
        };
        let through_nginx = request.port == super::NGINX_PORT;
        let port = if through_nginx {
            match self.routed_port() {
                Some(port) => {
                    kill_idle(self, port);
                    port
                }
                None => return Ok(reply(502)),
            }
        } else {
            request.port
        };
        let Some(image_ref) = app_on(self, port) else {
            return if through_nginx {
                Ok(reply(502))
            } else {
                Err("connection refused".into())
            };
        };
        let accepted = self.accept(port);
        let image = self
            .registry()
            .into_iter()
            .find(|i| i.digest_ref == image_ref);
        let healthy = image.as_ref().is_some_and(|i| i.healthy);
        let every = image.map_or(0, |i| i.errors_every);
        let flaky = through_nginx && every > 0 && accepted.is_multiple_of(every);
        Ok(reply(if healthy && !flaky { 200 } else { 500 }))
    }
}

impl FakeOs {
    /// (port, release reference) of every process mode app that lives.
    pub fn running_apps(&self) -> Vec<(u16, String)> {
        let Ok(apps) = std::fs::read_dir(self.path("os/apps")) else {
            return Vec::new();
        };
        apps.flatten()
            .filter_map(|app| {
                let pid: i32 = app.file_name().to_string_lossy().parse().ok()?;
                let text = std::fs::read_to_string(app.path()).ok()?;
                let mut words = text.split_whitespace();
                let port = words.next()?.parse().ok()?;
                let id = words.next()?;
                alive(pid).then(|| {
                    (
                        port,
                        format!("{}{id}", crate::build::artifact::RELEASE_PREFIX),
                    )
                })
            })
            .collect()
    }
}
