//! Migrating a server set up by hand (the seeds' scripts) without hand work: the app the old
//! script started keeps serving until the new color is verified, then it is stopped and kept,
//! with 0 failed requests; something foreign on the idle port is refused before any change.

use std::process::{Command, Stdio};

use crate::support::{load::Load, sh, shared, Site};

/// What seed 000's script leaves: `docker run --name app-blue -p 8081:8080` (no labels) and an
/// include file pointing nginx at it.
fn seed_000_server(site: &mut Site) -> String {
    let old = format!("{}-blue", site.app);
    sh(Command::new("docker").args([
        "run",
        "--detach",
        "--name",
        &old,
        "--publish",
        &format!("127.0.0.1:{}:8080", site.blue_port),
        "--env",
        "BLUEGREEN_COLOR=blue",
        &shared().image("v1"),
    ]));
    std::fs::write(
        &site.switch_file,
        format!("set $service_url http://127.0.0.1:{};\n", site.blue_port),
    )
    .unwrap();
    site.restart_nginx();
    crate::support::wait_for_port(site.blue_port, "the old app");
    old
}

#[test]
fn seed_000_container_is_adopted_kept_and_its_name_freed() {
    let mut site = Site::new("seed000");
    let old = seed_000_server(&mut site);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
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
    let _ = Command::new("docker")
        .args(["rm", "-f", &format!("{old}-before-bluegreen")])
        .output();
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
    std::fs::write(
        &site.switch_file,
        format!("set $service_url http://127.0.0.1:{};\n", site.blue_port),
    )
    .unwrap();
    site.restart_nginx();
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
    let status = old.wait().unwrap();
    assert!(!status.success() || status.code().is_none(), "{status:?}");
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.ok > 20, "{report:?}");
    let state = site.status_json();
    assert_eq!(state["live_color"], "green");
}
