//! Things on the fake machine that are not bluegreen's: a live unrelated process (a real
//! `sleep` in a process group of its own), maybe listening on some address; and the check that
//! none of them was touched: every such process still lives, and no two apps' DNAT rules send
//! one service port to different places.

use std::process::{Child, Command, Stdio};

use super::network::alive;
use super::FakeOs;

/// A live process bluegreen did not start; killed when dropped.
pub struct Foreign {
    child: Child,
}

impl Foreign {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeOs {
    /// Starts an unrelated process (its own process group, as a daemon has) that bluegreen
    /// must never signal; every [`FakeOs::untouched`] checks it still lives.
    pub fn start_foreign(&self) -> Foreign {
        use std::os::unix::process::CommandExt;
        let child = Command::new("sleep")
            .arg("100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        let list = self.read("os/foreign").unwrap_or_default() + &format!("{}\n", child.id());
        self.write("os/foreign", &list);
        Foreign { child }
    }

    /// Starts an app that is not bluegreen's own but may be adopted (an old script's): a real
    /// process listening on `address:port` and answering as `release:{id}`. Stopped with the
    /// machine, or when the returned guard drops (or by bluegreen).
    pub fn start_app(&self, address: &str, port: u16, id: &str) -> Foreign {
        use std::os::unix::process::CommandExt;
        let child = Command::new("sleep")
            .arg("100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        self.write(
            &format!("os/apps/{}", child.id()),
            &format!("{port} {id}\n"),
        );
        self.add_listener(address, port, child.id(), "java");
        Foreign { child }
    }

    /// Why the machine shows bluegreen touched what is not its own, if it does.
    pub fn untouched(&self) -> Result<(), String> {
        for pid in self.read("os/foreign").unwrap_or_default().lines() {
            if !alive(pid.parse().unwrap_or(0)) {
                return Err(format!("the unrelated process {pid} was killed"));
            }
        }
        let rules = self.dnat_rules();
        for (table, port, _) in &rules {
            if let Some((other, _, _)) = rules.iter().find(|(t, p, _)| p == port && t != table) {
                return Err(format!(
                    "tables {table} and {other} both send service port {port} somewhere: one \
                     app's site reaches the other's color"
                ));
            }
        }
        Ok(())
    }
}

impl FakeOs {
    /// The process mode apps that run as a color (the color's pid file names the app's process
    /// group): (color, port, release id).
    pub fn colors_running(&self) -> Vec<(String, u16, String)> {
        let Ok(apps) = std::fs::read_dir(self.path("os/apps")) else {
            return Vec::new();
        };
        let mut running = Vec::new();
        for app in apps.flatten() {
            let Ok(pid) = app.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let text = std::fs::read_to_string(app.path()).unwrap_or_default();
            let mut words = text.split_whitespace();
            let (Some(port), Some(id)) = (words.next(), words.next()) else {
                continue;
            };
            // SAFETY: a plain syscall on a pid this machine's stand-in `java` wrote.
            let group = unsafe { libc::getpgid(pid) }.to_string();
            for color in ["blue", "green"] {
                let named = self.read(&format!("state/{color}.pid"));
                if alive(pid) && named.is_some_and(|p| p.trim() == group) {
                    running.push((color.to_owned(), port.parse().unwrap_or(0), id.to_owned()));
                }
            }
        }
        running
    }

    /// In a copy: forgets the original's processes (apps, listeners, the colors' pid files
    /// naming them), so that nothing run on the copy can signal them. A test starts the copy's
    /// own with the real start script.
    pub(super) fn forget_processes(&self) {
        let Ok(apps) = std::fs::read_dir(self.path("os/apps")) else {
            return;
        };
        let mut pids = Vec::new();
        for app in apps.flatten() {
            let pid = app.file_name().to_string_lossy().into_owned();
            // SAFETY: as above.
            let group = unsafe { libc::getpgid(pid.parse().unwrap_or(0)) };
            pids.push((pid, group.to_string()));
            let _ = std::fs::remove_file(app.path());
        }
        let listen: String = self
            .read("os/ss/listen")
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                !pids
                    .iter()
                    .any(|(pid, _)| line.split(' ').nth(2) == Some(pid))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        self.write("os/ss/listen", &listen);
        for color in ["blue", "green"] {
            let file = format!("state/{color}.pid");
            if let Some(named) = self.read(&file) {
                if pids.iter().any(|(_, group)| *group == named.trim()) {
                    let _ = std::fs::remove_file(self.path(&file));
                }
            }
        }
    }

    /// Waits until an app of this machine listens on `port` (its start runs beside the start
    /// script); false after `within`.
    pub fn wait_listening(&self, port: u16, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.running_apps().iter().any(|(p, _)| *p == port) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }
}
