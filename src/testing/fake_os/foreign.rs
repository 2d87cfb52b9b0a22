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
    /// In a copy: every app the original runs (process mode) gets a process of its own, so that
    /// stopping it here leaves the original's alone. The new process (a `sleep`, leader of its
    /// own process group, as the supervisor is) takes the old one's place in the apps, the
    /// listeners and the colors' pid files.
    pub(super) fn restart_apps(&self) {
        let Ok(apps) = std::fs::read_dir(self.path("os/apps")) else {
            return;
        };
        let mut moved = Vec::new();
        for app in apps.flatten() {
            let Ok(pid) = app.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let text = std::fs::read_to_string(app.path()).unwrap_or_default();
            let _ = std::fs::remove_file(app.path());
            if !alive(pid) {
                continue;
            }
            // SAFETY: a plain syscall on a pid the original machine's stand-in `java` wrote.
            let group = unsafe { libc::getpgid(pid) };
            let fresh = detached_sleep();
            self.write(&format!("os/apps/{fresh}"), &text);
            moved.push((pid.to_string(), group.to_string(), fresh.to_string()));
        }
        let listen = self.read("os/ss/listen").unwrap_or_default();
        let listen: String = listen
            .lines()
            .map(|line| {
                let mut words: Vec<&str> = line.split(' ').collect();
                if let Some((_, _, fresh)) = moved.iter().find(|(old, _, _)| words[2] == old) {
                    words[2] = fresh;
                }
                words.join(" ") + "\n"
            })
            .collect();
        self.write("os/ss/listen", &listen);
        for color in ["blue", "green"] {
            let file = format!("state/{color}.pid");
            let Some(pid) = self.read(&file) else {
                continue;
            };
            if let Some((_, _, fresh)) = moved.iter().find(|(_, group, _)| *group == pid.trim()) {
                self.write(&file, &format!("{fresh}\n"));
            }
        }
    }
}

/// A `sleep` that leads a process group of its own and is no child of this process (init reaps
/// it once stopped, as it reaps the supervisors the start script leaves).
fn detached_sleep() -> u32 {
    let output = Command::new("sh")
        .args([
            "-c",
            "setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $!",
        ])
        .output()
        .expect("sh runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the pid of the sleep")
}
