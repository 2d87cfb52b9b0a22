//! Migrating a server set up by hand (the seeds' scripts) without hand work: the app the old
//! script started keeps serving until the new color is verified, then it is stopped and kept,
//! with 0 failed requests; something foreign on the idle port is refused before any change.

use std::process::{Command, Stdio};

use std::time::Duration;

use crate::support::{exit_within, load::Load, sh, shared, OldScriptContainer, Site};

/// What seed 000's script leaves: `docker run --name app-blue -p 8081:8080` (no labels) and an
/// include file pointing nginx at it.
fn seed_000_server(site: &mut Site) -> OldScriptContainer {
    let old = OldScriptContainer::start(site, &format!("{}-blue", site.app));
    site.point_nginx_at_blue_like_an_old_script();
    old
}

#[test]
fn seed_000_container_is_adopted_kept_and_its_name_freed() {
    let mut site = Site::new("seed000");
    let old_container = seed_000_server(&mut site);
    let old = old_container.name.clone();
    crate::support::wait_until(
        "nginx serves the old container",
        Duration::from_secs(30),
        || site.served() == Some(("v1".into(), "blue".into())),
    );
    let plan = site.run(&["plan", "--image-ref", &shared().image("v2")]);
    plan.success();
    assert!(
        plan.stdout.contains(&format!("docker stop --time 5 {old}")),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("docker rm"), "{}", plan.stdout);

    let load = Load::start(site.nginx_port, 4);
    let first = site.deploy("v2");
    first.success();
    assert!(
        first.stderr.contains("which bluegreen did not start"),
        "{}",
        first.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    let kept = sh(Command::new("docker").args([
        "inspect",
        "--format",
        "{{.State.Status}}",
        &format!("{old}-before-bluegreen"),
    ]));
    assert_eq!(kept.trim(), "exited");
    site.deploy("v3").success();
    let report = load.finish();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
    assert!(report.ok > 50, "{report:?}");
    assert_eq!(report.non_2xx, 0, "{report:?}");
}

#[test]
fn a_hand_started_process_on_the_live_port_is_adopted_then_stopped() {
    let mut site = Site::new("seedproc");
    // The old app: a process on the host (busybox httpd, like `java -jar app.jar` in seed 001).
    let www = site.dir.join("www");
    std::fs::create_dir_all(www.join("actuator")).unwrap();
    std::fs::write(
        www.join("index.html"),
        "{\"version\":\"v0\",\"color\":\"blue\"}",
    )
    .unwrap();
    std::fs::write(www.join("actuator/health"), "{\"status\":\"UP\"}").unwrap();
    let mut old = Command::new("busybox")
        .args([
            "httpd",
            "-f",
            "-p",
            &format!("127.0.0.1:{}", site.blue_port),
            "-h",
        ])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_for_port(site.blue_port, "the old process");
    site.point_nginx_at_blue_like_an_old_script();
    assert_eq!(site.served(), Some(("v0".into(), "blue".into())));

    // Something foreign on the idle port is refused first, naming it.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", site.green_port)).unwrap();
    let refused = site.deploy("v1");
    refused.code(1);
    let last = refused.last_line();
    assert!(
        last.contains(&format!(
            "green's port {} is held by process",
            site.green_port
        )) && last.contains(&format!("`kill {}`", std::process::id()))
            && last.contains("nothing was changed"),
        "{last}"
    );
    drop(squatter);
    assert_eq!(site.served(), Some(("v0".into(), "blue".into())));

    let load = Load::start(site.nginx_port, 4);
    let run = site.deploy("v1");
    run.success();
    let report = load.finish();
    assert!(
        run.stderr
            .contains(&format!("process busybox (pid {})", old.id())),
        "{}",
        run.stderr
    );
    assert_eq!(site.served(), Some(("v1".into(), "green".into())));
    // Stopped (SIGTERM), not left running; nothing else of it was touched.
    let status = exit_within(&mut old, Duration::from_secs(10));
    assert!(!status.success() || status.code().is_none(), "{status:?}");
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.ok > 20, "{report:?}");
    let state = site.status_json();
    assert_eq!(state["live_color"], "green");
}
