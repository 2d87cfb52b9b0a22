//! Never touch what is not ours (issue 21), with the real binary on the real sandbox: a
//! listener nginx does not reach is never adopted nor stopped, and another app's DNAT rule for
//! the same service_port is never shadowed.

use std::process::{Child, Command};
use std::time::Duration;

use crate::support::Site;

/// A python HTTP server on `address:port`, killed when the test ends.
struct Listener(Child);

impl Listener {
    fn start(address: &str, port: u16) -> Listener {
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", address, &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut listener = Listener(child);
        crate::support::wait_until("the listener", Duration::from_secs(10), || {
            std::net::TcpStream::connect((address, port)).is_ok()
        });
        assert!(listener.running());
        listener
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The switch file names blue's port (as an old script left it), but what listens there only
/// binds 127.0.0.3, which nginx (127.0.0.1) never reaches: the deploy refuses (exit 1), names
/// it, changes nothing and never stops it. Before, it was adopted as the old app and killed
/// after the deploy (exit 0).
#[test]
fn a_listener_nginx_does_not_reach_is_refused_and_never_stopped() {
    let mut site = Site::new("foreign");
    site.point_nginx_at_blue_like_an_old_script();
    let mut aside = Listener::start("127.0.0.3", site.blue_port);
    let switch_before = std::fs::read_to_string(&site.switch_file).unwrap();

    let run = site.deploy("v1");
    run.code(1);
    let last = run.last_line();
    assert!(
        last.contains(&format!("blue's port {}", site.blue_port))
            && last.contains(&format!(
                "(pid {}) listening only on 127.0.0.3",
                aside.0.id()
            ))
            && last.contains("nothing was changed"),
        "{last}"
    );
    assert!(aside.running(), "the foreign listener was stopped");
    assert_eq!(
        std::fs::read_to_string(&site.switch_file).unwrap(),
        switch_before
    );
    assert_eq!(site.container_state("green"), None);
    assert_eq!(site.container_state("blue"), None);
    assert!(!site.state_dir.join("state.json").exists());

    let doctor = site.run(&["doctor"]);
    assert!(
        doctor.stdout.contains(&format!(
            "✗ blue port {} is held by process python3 (pid {}) listening only on 127.0.0.3",
            site.blue_port,
            aside.0.id()
        )),
        "{}",
        doctor.stdout
    );
}
