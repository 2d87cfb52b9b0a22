//! The defects found from outside in issue 21's round, as cases on the fake operating system:
//! each sets up the server it was found on (a stale pid file naming a live unrelated process, a
//! listener on another address of the live port, another app's DNAT rule on our service port,
//! the old color dying during the bake) and runs a deploy with the real scripts. Each fails
//! until its fix lands (each failed before its fix was merged).

use super::on_fake_os::{
    config, machine, nftables_config, prepared, prepared_on, process_config, process_machine, run,
};
use super::Command;
use crate::testing::fake_os::SWITCH;

/// Process mode after a reboot or crash: blue's pid file names a pid the kernel has since given
/// to an unrelated daemon (a process group of its own). The deploy to blue must not signal it.
#[tokio::test]
async fn a_stale_pid_file_naming_a_live_unrelated_process_is_never_signalled() {
    let config = process_config();
    let two = prepared_on(
        &config,
        process_machine(),
        &[Command::Deploy("v1"), Command::Deploy("v2")],
    )
    .await;
    let daemon = two.start_foreign();
    two.write("state/blue.pid", &format!("{}\n", daemon.pid()));
    let (after, outcome) = run(&config, two, Command::Deploy("v3"), None).await;
    after.untouched().unwrap();
    let summary = outcome.unwrap().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        after.serving(),
        Some((8081, super::release("v3").reference())),
        "{}",
        summary.line()
    );
}

/// A migrated server: an old script's app serves on 127.0.0.1:8081 (the switch file's
/// address), and an unrelated service listens on 127.0.0.3:8081, which nginx never reaches
/// (and which `ss` lists first). Only the first may be adopted (and stopped after the switch).
#[tokio::test]
async fn a_listener_on_another_address_of_the_live_port_is_never_adopted() {
    let config = config();
    let before = machine();
    before.add_image("old-app", "release:old", "old", true);
    let foreign = before.start_foreign();
    before.add_listener("127.0.0.3", 8081, foreign.pid(), "sleep");
    let _old_app = before.start_app("127.0.0.1", 8081, "old");
    before.write(SWITCH, "set $service_url http://127.0.0.1:8081;\n");
    before.write(
        "os/nginx/loaded",
        "set $service_url http://127.0.0.1:8081;\n",
    );
    assert_eq!(before.serving(), Some((8081, "release:old".to_owned())));
    let (after, outcome) = run(&config, before, Command::Deploy("v2"), None).await;
    after.untouched().unwrap();
    let summary = outcome.unwrap().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        after.serving(),
        Some((8082, after.digest_of("reg.example/app:v2"))),
        "{}",
        summary.line()
    );
}

/// Another app on the same server already sends 127.0.0.1:8080 (the default service_port) to
/// its own color: our first deploy must be refused before any change, naming service_port,
/// instead of adding a second rule for the port (the first NAT binding wins: one app's site
/// then serves the other app).
#[tokio::test]
async fn another_apps_dnat_rule_on_the_service_port_is_refused() {
    let config = nftables_config();
    let before = machine();
    before.install("nft");
    before.write(
        "os/nft/bluegreen_other",
        &crate::server::nft::ruleset("bluegreen_other", 8080, 9091),
    );
    let (after, outcome) = run(&config, before, Command::Deploy("v1"), None).await;
    after.untouched().unwrap();
    let error = format!(
        "{:#}",
        outcome.unwrap().expect_err("the deploy was refused")
    );
    assert!(error.contains("service_port"), "{error}");
    assert_eq!(
        after.dnat_rules(),
        [("bluegreen_other".to_owned(), 8080, 9091)]
    );
}

/// The new color fails the bake, but the old one died meanwhile (it dies as soon as nginx sends
/// traffic elsewhere): switching back would leave nginx pointing at nothing. The new color
/// keeps serving, the run fails (exit 1) and the line does not claim the dead color serves.
#[tokio::test]
async fn a_failed_bake_never_switches_back_to_an_old_color_that_died() {
    let mut config = config();
    config.bake_time = std::time::Duration::from_millis(300);
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    one.set_errors_every("reg.example/app:v2", 2);
    one.write("os/containers/app-blue/dies_when_idle", "");
    let (after, outcome) = run(&config, one, Command::Deploy("v2"), None).await;
    let error = outcome.unwrap().expect_err("the bake failed");
    let text = format!("{error:#}");
    assert!(!after.containers()["app-blue"].running, "blue did not die");
    assert_eq!(crate::failure::exit_code(&error), 1, "{text}");
    assert_eq!(
        after.serving(),
        Some((8082, after.digest_of("reg.example/app:v2"))),
        "{text}"
    );
    assert!(!text.contains("blue still serves"), "{text}");
}
