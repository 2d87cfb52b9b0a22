//! Faults: each leaves the server serving, loses nothing, and says what happened.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{load::Load, shared, PrivateSshd, Run, Site};

#[test]
fn an_app_ready_late_in_its_health_timeout_is_deployed() {
    let mut site = Site::new("late");
    site.deploy("v1").success();
    // The image becomes ready 9 s after it starts: three quarters of the timeout, with room
    // for a container start on a loaded 2-core machine.
    site.set("BLUEGREEN_HEALTH_TIMEOUT", "12s");
    let run = site.deploy("slow9");
    run.success();
    assert_eq!(site.served(), Some(("slow9".into(), "green".into())));
}

#[test]
fn a_cut_ssh_connection_mid_deploy_is_recovered_by_the_next_deploy() {
    let mut site = Site::new("cut");
    let sshd = PrivateSshd::start("sshd-cut");
    site.set("BLUEGREEN_PORT", &sshd.port.to_string());
    site.set("BLUEGREEN_KNOWN_HOSTS", &sshd.known_hosts);
    site.deploy("v1").success();
    let child = site
        .bluegreen(&["deploy", "--image-ref", &shared().image("slow")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Inside the health wait of the slow image (it needs 3 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    while site.container_state("green").as_deref() != Some("running") {
        assert!(Instant::now() < deadline, "green never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    sshd.cut_connections();
    let cut = Run::from(child.wait_with_output().unwrap());
    cut.code(1);
    assert_eq!(
        site.served(),
        Some(("v1".into(), "blue".into())),
        "the old color keeps serving"
    );

    let next = site.deploy("v2");
    next.success();
    assert!(
        next.stderr.contains("both colors are running"),
        "the leftover is named: {}",
        next.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    let status = site.status_json();
    assert_eq!(status["lock"], serde_json::Value::Null);
    assert_eq!(status["live_color"], "green");
}

#[test]
fn two_deploys_started_together_are_serialized_without_failed_requests() {
    let site = Site::new("together");
    site.deploy("v1").success();
    let load = Load::start(site.nginx_port, 4);
    let spawn = |tag: &str| {
        site.bluegreen(&["deploy", "--image-ref", &shared().image(tag)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("v2"), spawn("v3"));
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    std::thread::sleep(Duration::from_millis(300));
    let report = load.finish();
    a.success();
    b.success();
    let waited = [&a, &b]
        .iter()
        .filter(|r| r.stderr.contains("for the deploy lock, held by"))
        .count();
    assert_eq!(waited, 1, "exactly one deploy waits for the other");
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.errors <= 4 * 2, "{report:?}");
    // Consistent: the last deploy's color and version serve, and status agrees.
    let status = site.status_json();
    let history = status["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["color"], "blue");
    assert_eq!(history[1]["color"], "green");
    let served = site.served().unwrap();
    assert_eq!(served.1, "blue");
    assert_eq!(status["live_color"], "blue");
    assert!(history[0]["image"]
        .as_str()
        .unwrap()
        .starts_with(&shared().repo));
    assert_eq!(report.versions.first().map(String::as_str), Some("v1"));
    assert_eq!(report.versions.last(), Some(&served.0));
}

#[test]
fn a_missing_switch_file_never_replaces_the_running_color() {
    let site = Site::new("noswitch");
    site.deploy("v1").success();
    std::fs::remove_file(&site.switch_file).unwrap();
    let run = site.deploy("v2");
    run.success();
    assert!(
        run.stderr
            .contains("but blue is running: deploying to green"),
        "{}",
        run.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
}

#[test]
fn both_colors_running_without_a_switch_file_is_refused() {
    let site = Site::new("ambiguous");
    site.deploy("v1").success();
    site.deploy("v2").success();
    crate::support::sh(
        std::process::Command::new("docker").args(["start", &format!("{}-blue", site.app)]),
    );
    std::fs::remove_file(&site.switch_file).unwrap();
    let run = site.deploy("v3");
    run.code(1);
    assert!(
        run.last_line().contains("both colors are running"),
        "{}",
        run.last_line()
    );
    assert!(
        run.last_line().contains("nothing was changed"),
        "{}",
        run.last_line()
    );
    assert_eq!(site.container_state("green").as_deref(), Some("running"));
    assert_eq!(site.container_state("blue").as_deref(), Some("running"));
}

#[test]
fn the_nftables_switch_swaps_without_a_single_failed_request() {
    let mut site = Site::new("nft");
    site.use_nftables_switch();
    site.deploy("v1").success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    let switch_file = std::fs::read_to_string(&site.switch_file).unwrap();
    let load = Load::start(site.nginx_port, 8);
    std::thread::sleep(Duration::from_millis(300));
    site.swap_without_reload(&[("v2", "green"), ("v3", "blue"), ("v1", "green")]);
    std::thread::sleep(Duration::from_millis(300));
    let report = load.finish();
    assert!(report.ok > 100, "{report:?}");
    assert_eq!((report.non_2xx, report.errors), (0, 0), "{report:?}");
    assert_eq!(report.versions, ["v1", "v2", "v3", "v1"], "{report:?}");
    assert_eq!(
        std::fs::read_to_string(&site.switch_file).unwrap(),
        switch_file,
        "nginx's file is never touched"
    );
    let rules = crate::support::sh(std::process::Command::new("nft").args([
        "list",
        "table",
        "ip",
        &site.nft_table(),
    ]));
    assert!(
        rules.contains(&format!("dnat to 127.0.0.1:{}", site.green_port)),
        "{rules}"
    );
    let status = site.status_json();
    assert_eq!(status["live_color"], "green");
    site.run(&["rollback"]).success();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
}
