//! Single runs on the fake operating system, each from a server state the matrix does not
//! start from: a failed deploy then a rollback, the image already live, a switch nginx does not
//! take, the bake (failing and passing), an app an old script started, a foreign container on
//! the idle port.

use super::on_fake_os::{config, machine, prepared, prepared_on, run};
use super::Command;
use crate::color::Color;
use crate::testing::fake_os::{Container, SWITCH};

const V1: &str = "reg.example/app:v1";
const V2: &str = "reg.example/app:v2";
const V3: &str = "reg.example/app:v3";

#[tokio::test]
async fn rollback_after_a_failed_deploy_returns_to_the_last_good_image() {
    let config = config();
    let two = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
    let (failed, outcome) = run(&config, two, Command::Deploy("bad"), None).await;
    assert!(outcome.unwrap().is_err());
    // The failed image took blue's name; the rollback must re-create v1, not start it.
    let (back, outcome) = run(&config, failed, Command::Rollback, None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(summary.image, back.digest_of(V1));
    assert_eq!(back.serving().unwrap().1, back.digest_of(V1));
}

#[tokio::test]
async fn the_image_already_live_changes_nothing() {
    let config = config();
    let two = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
    let (serving, previous) = (two.serving(), two.state()["previous_image"].clone());
    let (after, outcome) = run(&config, two, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert!(summary.unchanged, "{}", summary.line());
    // The live color is named, not the color a deploy would have gone to.
    assert!(
        summary.line().starts_with("already live: green serves"),
        "{}",
        summary.line()
    );
    assert_eq!(after.serving(), serving);
    assert_eq!(after.state()["previous_image"], previous);
}

#[tokio::test]
async fn a_switch_nginx_does_not_take_is_switched_back() {
    let config = config();
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    one.knob("nginx-ignores-switch", "");
    let serving = one.serving();
    let (after, outcome) = run(&config, one, Command::Deploy("v2"), None).await;
    let error = outcome.unwrap().unwrap_err();
    assert!(format!("{error:#}").contains("was not taken"), "{error:#}");
    assert_eq!(after.serving(), serving);
}

/// A new color that fails half the requests through nginx passes health and verification,
/// then fails the bake: traffic goes back to the old color, state.json names it again, and the
/// error line and the history say failed with the counts.
#[tokio::test]
async fn a_new_color_failing_during_the_bake_is_switched_back() {
    let mut config = config();
    config.bake_time = std::time::Duration::from_millis(300);
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    one.set_errors_every(V2, 2);
    let (serving, state_before) = (one.serving(), one.state());
    let (after, outcome) = run(&config, one, Command::Deploy("v2"), None).await;
    let error = format!("{:#}", outcome.unwrap().unwrap_err());
    assert!(error.contains("during the bake"), "{error}");
    assert!(error.contains("above bake_max_error_rate 1%"), "{error}");
    assert!(error.contains("blue still serves traffic"), "{error}");
    assert!(
        error.contains("probe requests through nginx during the switch ("),
        "{error}"
    );
    assert_eq!(after.serving(), serving);
    assert_eq!(after.state(), state_before);
    let entry = after.last_history_entry();
    assert_eq!(entry["result"], "failed", "{entry}");
    let green_errors = entry["impact"]["green"]["server_errors"].as_u64();
    assert!(green_errors.unwrap_or(0) >= 1, "{entry}");
}

/// A healthy new color passes the bake; the summary says what the probe requests got.
#[tokio::test]
async fn a_healthy_new_color_passes_the_bake_and_reports_its_counts() {
    let mut config = config();
    config.bake_time = std::time::Duration::from_millis(300);
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    let (after, outcome) = run(&config, one, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    let bake = summary.bake.clone().expect("the bake ran");
    assert!(bake.contains("0 failed of"), "{bake}");
    assert!(summary.line().contains(&bake));
    assert_eq!(
        after.serving().map(|(_, image)| image),
        Some(after.digest_of(V2))
    );
}

/// A running container without bluegreen's labels, publishing `port`.
fn started_by_an_old_script(image_ref: String, port: u16) -> Container {
    Container {
        image_ref,
        running: true,
        port,
        app: String::new(),
        color: String::new(),
    }
}

/// Seed 000's server: its script started `app-blue` (our name, without our label) on the blue
/// port, and the switch file points there. The deploy keeps it serving, verifies green, then
/// stops it and frees the name (kept, never removed); the next deploy can use blue.
#[tokio::test]
async fn an_app_started_by_an_old_script_is_adopted_then_kept() {
    let config = config();
    let before = machine();
    let old_image = before.digest_of(V1);
    before.add_container(
        "app-blue",
        &started_by_an_old_script(old_image.clone(), 8081),
    );
    before.write(SWITCH, "set $service_url http://127.0.0.1:8081;\n");
    before.write(
        "os/nginx/loaded",
        "set $service_url http://127.0.0.1:8081;\n",
    );
    let (after, outcome) = run(&config, before, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(summary.new, Color::Green, "{}", summary.line());
    assert_eq!(after.serving(), Some((8082, after.digest_of(V2))));
    let kept = &after.containers()["app-blue-before-bluegreen"];
    assert!(!kept.running && kept.image_ref == old_image);
    assert_eq!(after.state()["previous_image"], serde_json::Value::Null);
    let again = prepared_on(&config, after, &[Command::Deploy("v3")]).await;
    assert_eq!(again.serving(), Some((8081, again.digest_of(V3))));
    assert!(again.containers().contains_key("app-blue-before-bluegreen"));
}

/// Something bluegreen did not start on the idle color's port: refused before any change.
#[tokio::test]
async fn a_foreign_app_on_the_idle_port_is_refused_before_any_change() {
    let config = config();
    let before = prepared(&config, &[Command::Deploy("v1")]).await;
    before.add_container(
        "legacy",
        &started_by_an_old_script("old/app:1".into(), 8082),
    );
    let (serving, commands_before) = (before.serving(), before.log.len());
    let (after, outcome) = run(&config, before, Command::Deploy("v2"), None).await;
    let error = format!("{:#}", outcome.unwrap().unwrap_err());
    assert!(
        error.contains("green's port 8082 is held by container legacy (old/app:1)")
            && error.contains("`docker stop legacy`")
            && error.contains("nothing was changed"),
        "{error}"
    );
    assert_eq!(after.serving(), serving);
    assert!(after.log[commands_before..]
        .iter()
        .all(|l| !l.starts_with("docker run") && !l.contains("pull")));
}

/// The stand-ins' own faults (knobs), under the real scripts: `nginx -t` rejecting the new
/// switch, `docker run` failing, `ss` missing from the server. Each deploy fails or succeeds as
/// the engine promises, and the old color keeps serving when it fails.
#[tokio::test]
async fn the_stand_ins_faults_keep_the_old_color_serving() {
    let config = config();
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    for knob in ["nginx-test", "docker-run", "docker-pull"] {
        let before = one.clone();
        before.knob(knob, "fail");
        let serving = before.serving();
        let (after, outcome) = run(&config, before, Command::Deploy("v2"), None).await;
        let error = outcome.unwrap().expect_err(knob);
        assert_eq!(crate::failure::exit_code(&error), 1, "{knob}: {error:#}");
        assert!(
            format!("{error:#}").contains("injected failure"),
            "{knob}: {error:#}"
        );
        assert_eq!(after.serving(), serving, "{knob}: {error:#}");
        assert!(!after.lock_held(), "{knob}");
    }
    // A server without `ss`: the scripts fall back to /proc (the real one: no socket of the
    // fake machine is there), and the deploy still succeeds.
    let without_ss = one.clone();
    without_ss.uninstall("ss");
    let (after, outcome) = run(&config, without_ss, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        after.serving(),
        Some((8082, after.digest_of(V2))),
        "{}",
        summary.line()
    );
}
