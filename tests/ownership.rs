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

/// Two apps on one server, both on the nftables switch with the same service_port (the
/// issue's default 8080 for both): app A's DNAT table is there; app B's first deploy is
/// refused before any change (exit 2), naming `service_port` and app A's table; B's `doctor`
/// shows it and suggests a free port; A still serves A. Before, B added its own rule and A's
/// site could serve B (exit 0).
#[test]
fn a_service_port_another_apps_dnat_rule_uses_is_refused() {
    let mut a = Site::new("shared-a");
    let service_port = a.use_nftables_switch();
    a.deploy("v1").success();
    let a_table = a.nft_table();

    let mut b = Site::new("shared-b");
    b.use_nftables_switch();
    std::fs::write(
        &b.switch_file,
        format!("set $service_url http://127.0.0.1:{service_port};\n"),
    )
    .unwrap();
    b.restart_nginx();
    b.set("BLUEGREEN_SERVICE_PORT", &service_port.to_string());

    let run = b.deploy("v2");
    run.code(2);
    let last = run.last_line();
    assert!(
        last.contains(&format!(
            "service_port {service_port} is not this app's alone"
        )) && last.contains(&format!("nftables table ip {a_table}"))
            && last.contains("nothing was changed")
            && last.contains("set service_port to a free port, e.g. "),
        "{last}"
    );
    let tables = crate::support::sh(Command::new("nft").args(["list", "tables", "ip"]));
    assert!(!tables.contains(&b.nft_table()), "{tables}");
    assert_eq!(b.container_state("blue"), None);
    assert_eq!(a.served(), Some(("v1".into(), "blue".into())));

    let doctor = b.run(&["doctor"]);
    assert!(
        doctor.stdout.contains(&format!(
            "✗ service_port {service_port} is not this app's alone: another app's DNAT rule \
             uses it (nftables table ip {a_table}"
        )) && doctor
            .stdout
            .contains("set service_port to a free port, e.g. "),
        "{}",
        doctor.stdout
    );
    let own = a.run(&["doctor"]);
    assert!(
        own.stdout.contains(&format!(
            "✓ service_port {service_port}: no other nat rule or listener uses it"
        )),
        "{}",
        own.stdout
    );
}
