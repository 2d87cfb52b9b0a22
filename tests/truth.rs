//! Never report success while the site is down: one real-server regression test for each case
//! that used to end in a false success or a false state (issue "truthful state").

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{shared, wait_until, Site};

/// Starts a deploy to v2 and returns once it has written the switch file for green (and 300 ms
/// more), with its stderr piped or not.
fn deploy_past_the_switch_file_write(site: &Site, stderr: Stdio) -> std::process::Child {
    let child = site
        .bluegreen(&["deploy", "--image-ref", &shared().image("v2")])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_until(
        "the switch file points at green",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&site.switch_file)
                .is_ok_and(|s| s.contains(&site.green_port.to_string()))
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Case 1: a failed deploy takes the idle color's name; the rollback must still go back to the
/// last good image (by digest), not start the rejected build.
#[test]
fn rollback_after_a_failed_deploy_returns_to_the_last_good_image() {
    let site = Site::new("rbfail");
    site.deploy("v1").success();
    site.deploy("v2").success();
    let failed = site.deploy("sick");
    failed.code(1);
    assert!(
        failed.last_line().contains("green still serves traffic"),
        "{}",
        failed.last_line()
    );
    let rollback = site.run(&["rollback"]);
    rollback.success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    let status = site.status_json();
    assert_eq!(status["live_color"], "blue");
    assert!(
        status["previous_image"]
            .as_str()
            .is_some_and(|i| i.contains("@sha256:")),
        "{status}"
    );
    // And back again: the previous is now v2.
    site.run(&["rollback"]).success();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
}

/// Case 1b: with no earlier good image there is nothing to roll back to: exit 1, nothing changes.
#[test]
fn rollback_without_a_previous_good_image_changes_nothing() {
    let site = Site::new("rbnone");
    site.deploy("v1").success();
    let run = site.run(&["rollback"]);
    run.code(1);
    assert!(
        run.last_line().contains("nothing to roll back to")
            && run.last_line().contains("blue still serves traffic"),
        "{}",
        run.last_line()
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}

/// Case 2: bluegreen killed between writing the switch file and the reload. The file says green,
/// nginx serves blue. `status` must say blue, and the next deploy must not remove blue.
#[test]
fn a_switch_interrupted_before_the_reload_is_reconciled() {
    let mut site = Site::new("interrupted");
    site.deploy("v1").success();
    let reload = site.setting("BLUEGREEN_NGINX_RELOAD_COMMAND");
    site.set("BLUEGREEN_NGINX_RELOAD_COMMAND", "sleep 30");
    let mut child = deploy_past_the_switch_file_write(&site, Stdio::null());
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    site.set("BLUEGREEN_NGINX_RELOAD_COMMAND", &reload);
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));

    let status = site.status_json();
    assert_eq!(status["live_color"], "blue", "{status}");
    let notes = status["notes"].to_string();
    assert!(
        notes.contains("interrupted") || notes.contains("last verified"),
        "{status}"
    );

    let load = crate::support::load::Load::start(site.nginx_port, 4);
    let next = site.deploy("v3");
    let report = load.finish();
    next.success();
    assert_eq!(site.served(), Some(("v3".into(), "green".into())));
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert_eq!(site.container_state("blue").as_deref(), Some("exited"));
}

/// Case 3: a switch file nginx does not include. Every request through nginx still reaches
/// blue; the switch must be reported as not taken (exit 1), switched back, blue kept serving.
#[test]
fn a_switch_nginx_does_not_take_fails_and_keeps_the_old_color() {
    let mut site = Site::new("notincluded");
    site.set(
        "BLUEGREEN_VERIFY_URL",
        &format!("http://127.0.0.1:{}/ping", site.nginx_port),
    );
    site.deploy("v1").success();
    let ignored = site.dir.join("conf.d/not-included.inc.off");
    std::fs::copy(&site.switch_file, &ignored).unwrap();
    site.set("BLUEGREEN_NGINX_SWITCH_FILE", ignored.to_str().unwrap());
    let run = site.deploy("v2");
    run.code(1);
    let last = run.last_line();
    assert!(last.contains("was not taken"), "{last}");
    assert!(last.contains("still reach blue"), "{last}");
    assert!(last.contains("blue still serves traffic"), "{last}");
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_ne!(site.container_state("green").as_deref(), Some("running"));
    assert_eq!(site.status_json()["live_color"], "blue");
}

/// Case 3 (seed 003): nginx whose switch file is a single-file bind mount keeps the old inode,
/// answers 2xx from the old color after every reload; the deploy must say so and switch back.
#[test]
fn a_single_file_bind_mount_is_not_taken_and_says_so() {
    let mut site = Site::new("bindmount");
    site.set(
        "BLUEGREEN_VERIFY_URL",
        &format!("http://127.0.0.1:{}/ping", site.nginx_port),
    );
    site.deploy("v1").success();
    site.restart_nginx_with_the_switch_file_bind_mounted();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    let run = site.deploy("v2");
    run.code(1);
    let last = run.last_line();
    assert!(last.contains("was not taken"), "{last}");
    assert!(last.contains("blue still serves traffic"), "{last}");
    assert!(run.stderr.contains("bind-mounted"), "{}", run.stderr);
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_ne!(site.container_state("green").as_deref(), Some("running"));
    assert_eq!(site.status_json()["live_color"], "blue");
    assert_eq!(site.status_json()["history"][0]["result"], "failed");
}

/// Case 3b: the same page (no color named in it) through a switch nginx does take is proven
/// by the new color's own connections.
#[test]
fn a_switch_is_proven_by_the_new_colors_connections() {
    let mut site = Site::new("connproof");
    site.set(
        "BLUEGREEN_VERIFY_URL",
        &format!("http://127.0.0.1:{}/ping", site.nginx_port),
    );
    site.deploy("v1").success();
    let run = site.deploy("v2");
    run.success();
    assert!(
        run.stderr.contains("green received")
            && run.stderr.contains("new connections through nginx"),
        "{}",
        run.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
}

/// Case 4: a compose file with a fixed tag runs that tag, not the image being deployed.
#[test]
fn a_compose_file_with_a_fixed_tag_fails_instead_of_claiming_the_deploy() {
    let mut site = Site::new("fixedtag");
    let file = site.dir.join("docker-compose.yml");
    let service = |color: &str, port: u16| {
        format!(
            "  {color}:\n    image: {}\n    ports: [\"127.0.0.1:{port}:8080\"]\n    \
             environment: {{BLUEGREEN_COLOR: {color}}}\n",
            shared().image("v1")
        )
    };
    std::fs::write(
        &file,
        format!(
            "version: \"2.4\"\nservices:\n{}{}",
            service("blue", site.blue_port),
            service("green", site.green_port)
        ),
    )
    .unwrap();
    site.set("BLUEGREEN_COMPOSE_FILE", file.to_str().unwrap());
    site.set("BLUEGREEN_COMPOSE_PROJECT", &site.app.clone());
    site.deploy("v1").success();
    let run = site.deploy("v2");
    run.code(1);
    assert!(
        run.last_line().contains("${BLUEGREEN_IMAGE}"),
        "{}",
        run.last_line()
    );
    assert!(
        run.last_line().contains("blue still serves traffic"),
        "{}",
        run.last_line()
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    let _ = std::process::Command::new("docker-compose")
        .args(["-f", file.to_str().unwrap(), "-p", &site.app, "down"])
        .output();
}

/// Case 5: deploying the live image again changes nothing (no swap, rollback slot kept).
#[test]
fn redeploying_the_live_image_changes_nothing_unless_forced() {
    let site = Site::new("samelive");
    site.deploy("v1").success();
    site.deploy("v2").success();
    let before = site.status_json();
    let again = site.deploy("v2");
    again.success();
    assert!(again.stderr.contains("already live"), "{}", again.stderr);
    let after = site.status_json();
    assert_eq!(after["live_color"], "green");
    assert_eq!(after["previous_image"], before["previous_image"]);
    assert_eq!(after["history"][0]["result"], "unchanged");
    assert_eq!(site.container_state("blue").as_deref(), Some("exited"));
    let forced = site.run(&["deploy", "--force", "--image-ref", &shared().image("v2")]);
    forced.success();
    assert_eq!(site.served(), Some(("v2".into(), "blue".into())));
}

/// Case 6: a hung server command (here `nginx -t`) ends at command_timeout; the deploy fails
/// safely and frees the lock.
#[test]
fn a_hung_server_command_ends_at_command_timeout() {
    let mut site = Site::new("hung");
    site.deploy("v1").success();
    site.set("BLUEGREEN_NGINX_TEST_COMMAND", "sleep 600");
    site.set("BLUEGREEN_COMMAND_TIMEOUT", "2s");
    let started = Instant::now();
    let run = site.deploy("v2");
    let took = started.elapsed();
    run.code(1);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        run.last_line().contains("command_timeout"),
        "{}",
        run.last_line()
    );
    assert!(
        run.last_line().contains("blue still serves traffic"),
        "{}",
        run.last_line()
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
}

/// Sends SIGTERM to a running deploy: it must end within 5 s, exit 1, saying "cancelled".
/// Returns its stderr.
fn terminated_within_five_seconds(mut child: std::process::Child) -> String {
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}\n{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    stderr
}

/// Case 6b: SIGTERM while a server command hangs: out within 5 s, the old color serving.
#[test]
fn sigterm_during_a_hung_switch_is_honoured_within_five_seconds() {
    let mut site = Site::new("termhung");
    site.deploy("v1").success();
    site.set("BLUEGREEN_NGINX_TEST_COMMAND", "sleep 600");
    site.set("BLUEGREEN_COMMAND_TIMEOUT", "40s");
    let child = deploy_past_the_switch_file_write(&site, Stdio::piped());
    let stderr = terminated_within_five_seconds(child);
    assert!(!stderr.contains("fix the app"), "{stderr}");
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}

/// Case 7b: with nginx down, a failed deploy must not claim that blue "still serves traffic".
#[test]
fn a_failure_while_nginx_is_down_says_the_site_is_down() {
    let mut site = Site::new("nginxdown");
    site.deploy("v1").success();
    site.stop_nginx();
    let run = site.deploy("v2");
    run.code(1);
    let last = run.last_line();
    assert!(!last.contains("still serves traffic"), "{last}");
    assert!(
        last.contains("blue is running but nginx does not answer"),
        "{last}"
    );
    assert!(last.contains("the site is down"), "{last}");
    site.restart_nginx();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}

/// Case 7: a reference that looks like a flag is bad input, not a docker argument.
#[test]
fn an_image_ref_that_looks_like_a_flag_is_refused() {
    let site = Site::new("flagref");
    let run = site.run(&["deploy", "--image-ref=--help"]);
    run.code(2);
    assert!(
        run.last_line().contains("--image-ref"),
        "{}",
        run.last_line()
    );
}

/// Case 7c: the switch file is a symlink with its own mode: both survive a deploy.
#[test]
fn a_symlinked_switch_file_keeps_its_link_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let mut site = Site::new("symlink");
    let real = site.dir.join("conf.d/real-switch.conf");
    std::fs::write(
        &real,
        format!("set $service_url http://127.0.0.1:{};\n", site.blue_port),
    )
    .unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = site.dir.join("conf.d/link.inc");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // nginx reads the link (the site's config includes conf.d/service-url.inc: point it there).
    std::fs::write(&site.switch_file, format!("include {};\n", link.display())).unwrap();
    site.restart_nginx();
    site.set("BLUEGREEN_NGINX_SWITCH_FILE", link.to_str().unwrap());
    site.deploy("v1").success();
    site.deploy("v2").success();
    let (served, color) = site.served().expect("nginx serves");
    assert_eq!(served, "v2");
    let port = if color == "blue" {
        site.blue_port
    } else {
        site.green_port
    };
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains(&format!(":{port};")));
}

/// Case 7d: an endless switch file is read only so far, and refused.
#[test]
fn an_endless_switch_file_is_refused_quickly() {
    let mut site = Site::new("devzero");
    site.set("BLUEGREEN_NGINX_SWITCH_FILE", "/dev/zero");
    let started = Instant::now();
    let run = site.deploy("v1");
    run.code(1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.last_line().contains("points at neither color"),
        "{}",
        run.last_line()
    );
}

/// Case 7e: when the new state cannot be recorded (a full disk), the deploy is switched back
/// and fails, instead of exit 0 with the rollback target lost.
#[test]
fn a_state_dir_that_cannot_be_written_fails_the_deploy_safely() {
    let site = Site::new("fullstate");
    site.deploy("v1").success();
    std::fs::create_dir_all(site.state_dir.join("state.json.tmp/blocker")).unwrap();
    let run = site.deploy("v2");
    run.code(1);
    assert!(
        run.last_line().contains("recording the deploy"),
        "{}",
        run.last_line()
    );
    assert!(
        run.last_line().contains("blue still serves traffic"),
        "{}",
        run.last_line()
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_ne!(site.container_state("green").as_deref(), Some("running"));
}

/// Case 6c: SIGTERM during a pull that does not progress (a registry that accepts the
/// connection and never answers): out within 5 s, the kept rollback container untouched.
#[test]
fn sigterm_during_a_stuck_pull_is_honoured_and_keeps_the_rollback_container() {
    let site = Site::new("termpull");
    site.deploy("v1").success();
    site.deploy("v2").success();
    assert_eq!(site.container_state("blue").as_deref(), Some("exited"));
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for connection in silent.incoming().flatten() {
            keep.lock().unwrap().push(connection);
        }
    });
    let stuck = format!("127.0.0.1:{silent_port}/demo/app:v3");
    let child = site
        .bluegreen(&["deploy", "--image-ref", &stuck])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "the docker daemon connects to the silent registry",
        Duration::from_secs(30),
        || !held.lock().unwrap().is_empty(),
    );
    terminated_within_five_seconds(child);
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    assert_eq!(site.container_state("blue").as_deref(), Some("exited"));
    assert_eq!(site.status_json()["history"][0]["result"], "cancelled");
    site.run(&["rollback"]).success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}
