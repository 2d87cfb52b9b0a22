//! The server-side deploy lock: overlapping deploys wait and then proceed; timeouts exit 3;
//! a killed holder never blocks the next deploy; unlock names the holder.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{shared, Site};

fn start_deploy(site: &Site, tag: &str) -> Child {
    site.bluegreen(&["deploy", "--image-ref", &shared().image(tag)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until status shows the lock held (by the deploy just started).
fn wait_for_lock(site: &Site) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = site.status_json();
        if !status["lock"].is_null() {
            return status["lock"].clone();
        }
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_second_deploy_waits_for_the_first_then_proceeds() {
    let site = Site::new("lockwait");
    site.deploy("v1").success();
    let first = start_deploy(&site, "slow");
    let lock = wait_for_lock(&site);
    assert!(
        lock["holder"]["image"].as_str().unwrap().ends_with(":slow"),
        "{lock}"
    );
    assert!(
        lock["holder"]["since"].as_str().unwrap().ends_with('Z'),
        "{lock}"
    );
    let second = site.deploy("v3");
    let first = crate::support::Run::from(first.wait_with_output().unwrap());
    first.success();
    second.success();
    assert!(
        second.stderr.contains("for the deploy lock, held by"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains(":slow since"), "{}", second.stderr);
    // v1 on blue → slow on green → v3 on blue, in that order.
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
    let status = site.status_json();
    let colors: Vec<_> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["color"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(colors, ["blue", "green", "blue"]);
}

#[test]
fn the_lock_timeout_exits_3_and_changes_nothing() {
    let mut site = Site::new("locktimeout");
    site.deploy("v1").success();
    let first = start_deploy(&site, "slow");
    wait_for_lock(&site);
    site.set("BLUEGREEN_LOCK_TIMEOUT", "1s");
    let second = site.deploy("v2");
    second.code(3);
    assert!(
        second.last_line().contains("was not acquired within 1s"),
        "{}",
        second.last_line()
    );
    crate::support::Run::from(first.wait_with_output().unwrap()).success();
    assert_eq!(site.served(), Some(("slow".into(), "green".into())));
}

#[test]
fn a_killed_deploy_does_not_leave_its_lock_behind() {
    let site = Site::new("lockkill");
    site.deploy("v1").success();
    let mut first = start_deploy(&site, "slow");
    wait_for_lock(&site);
    first.kill().unwrap(); // SIGKILL: no cleanup code runs in the deploying process
    first.wait().unwrap();
    let started = Instant::now();
    let next = site.deploy("v2");
    next.success();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "waited {:?} for a dead holder",
        started.elapsed()
    );
    let served = site.served().unwrap();
    assert_eq!(served.0, "v2");
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
}

#[test]
fn unlock_keeps_a_live_deploys_lock_unless_forced_and_names_the_holder() {
    let site = Site::new("unlock");
    let free = site.run(&["unlock"]);
    free.success();
    assert!(free.stdout.contains("was not held"), "{}", free.stdout);
    // slow9: the deploy holds the lock long enough for both unlocks, even on a loaded machine.
    let first = start_deploy(&site, "slow9");
    wait_for_lock(&site);
    // The holder's client runs (here, on this machine): its lock is kept, nothing changes.
    let refused = site.run(&["unlock"]);
    refused.code(1);
    assert!(
        refused.last_line().contains(":slow9 since")
            && refused.last_line().contains("which may still be deploying")
            && refused.last_line().contains("still runs here")
            && refused.last_line().contains("bluegreen unlock --force"),
        "{}",
        refused.last_line()
    );
    assert!(
        !site.status_json()["lock"].is_null(),
        "the live lock was removed"
    );
    let run = site.run(&["unlock", "--force"]);
    run.success();
    assert!(
        run.stdout.contains("removed the deploy lock held by"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(":slow9 since"), "{}", run.stdout);
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
    let _ = first.wait_with_output();
}

/// A lock whose client is gone but whose server side lingers (the client was killed while its
/// SSH connection stayed up): `unlock` removes it without `--force`.
#[test]
fn unlock_removes_the_lock_of_a_client_that_is_gone() {
    let site = Site::new("unlockgone");
    std::fs::create_dir_all(&site.state_dir).unwrap();
    let mut ended = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = ended.id();
    ended.wait().unwrap();
    let machine = std::fs::read_to_string("/etc/hostname").unwrap();
    let holder = serde_json::json!({
        "who": format!("ci@{}", machine.trim()),
        "image": "app:stuck",
        "since": "2026-12-06T23:00:00Z",
        "client_pid": dead_pid,
    })
    .to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/server/state/lock.sh");
    let mut lingering = std::process::Command::new("sh")
        .arg(script)
        .arg(&site.state_dir)
        .arg(&holder)
        .arg("5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = wait_for_lock(&site);
    assert_eq!(lock["holder"]["image"], "app:stuck", "{lock}");
    let run = site.run(&["unlock"]);
    run.success();
    assert!(
        run.stdout.contains("removed the deploy lock held by ci@"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!(
            "its client (pid {dead_pid} on this machine) no longer runs"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
    let _ = lingering.kill();
    let _ = lingering.wait();
}

#[test]
fn sigterm_mid_deploy_leaves_the_old_color_serving_and_releases_the_lock() {
    let site = Site::new("sigterm");
    site.deploy("v1").success();
    let child = start_deploy(&site, "slow");
    wait_for_lock(&site);
    std::thread::sleep(Duration::from_millis(1500)); // inside the health wait of the slow image
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let run = crate::support::Run::from(child.wait_with_output().unwrap());
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        signalled.elapsed()
    );
    run.code(1);
    assert!(run.last_line().contains("cancelled"), "{}", run.last_line());
    assert!(
        run.last_line().contains("blue still serves traffic"),
        "{}",
        run.last_line()
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
    assert_ne!(site.container_state("green").as_deref(), Some("running"));
}
