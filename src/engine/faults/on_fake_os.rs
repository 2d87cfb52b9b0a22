//! The fault matrix on the fake operating system: bluegreen's commands run for real (the real
//! server scripts, on stand-in `docker`, `nginx`, `nft`, `ss`), every fault at every command,
//! and the invariants of [`super::check`] read from the stand-ins' state files.

use std::time::Duration;

use super::{every_fault, Cancel, Command, Ctx, Runtime};
use crate::engine::swap::Summary;
use crate::printer::{Printer, Style};
use crate::server::compose::ComposeTool;
use crate::settings::Config;
use crate::testing::fake_os::{FakeOs, FakeOsHost, FaultKind, STATE_DIR, SWITCH};

/// The matrix's settings on the fake machine: its state directory and switch file lie in the
/// machine's directory (`~` and the working directory of every command).
pub(super) fn config() -> Config {
    super::fast(crate::testing::config(&[
        ("image", "reg.example/app"),
        ("username", "root"),
        ("health_interval", "5ms"),
        ("health_timeout", "100ms"),
        ("state_dir", STATE_DIR),
        ("nginx_switch_file", SWITCH),
    ]))
}

/// nginx's switch, then `traffic_switch: auto` where nft works: DNAT of port 8080.
pub(super) fn nftables_config() -> Config {
    let mut config = config();
    config.traffic_switch = crate::settings::TrafficSwitch::Nftables {
        service_port: 8080,
        owns_switch_file: true,
    };
    config
}

/// A fresh machine whose registry holds v1, v2, v3 (healthy) and bad (never healthy), without
/// nft (so `auto` switches with nginx).
pub(super) fn machine() -> FakeOs {
    let os = FakeOs::new();
    os.uninstall("nft");
    for (tag, healthy) in [("v1", true), ("v2", true), ("v3", true), ("bad", false)] {
        os.push_image(&format!("reg.example/app:{tag}"), healthy);
    }
    os
}

/// Process mode on the fake machine: the colors run the stand-in `java` (a real `sleep`).
pub(super) fn process_config() -> Config {
    super::fast(crate::testing::config(&[
        ("app_name", "app"),
        ("run_command", "java -jar {artifact} --server.port={port}"),
        ("username", "root"),
        ("health_interval", "5ms"),
        // The app starts beside the start script (a real process): on a loaded machine that
        // can take longer than the containers' 100 ms.
        ("health_timeout", "5s"),
        ("state_dir", STATE_DIR),
        ("nginx_switch_file", SWITCH),
    ]))
}

/// A fresh machine for process mode, without Docker or nft: each version's "digest" is its
/// release reference, so the invariants read the same.
pub(super) fn process_machine() -> FakeOs {
    let os = FakeOs::new();
    os.uninstall("nft");
    os.uninstall("docker");
    for (tag, healthy) in [("v1", true), ("v2", true), ("v3", true), ("bad", false)] {
        let release = super::release(tag);
        let tag_ref = format!("reg.example/app:{tag}");
        os.add_image(&tag_ref, &release.reference(), &release.id, healthy);
    }
    os
}

/// A copy of `os` to run a case on: its files, and in process mode each color's app started
/// again by the real start script (what the engine sends to start a kept color), so the copy's
/// app is its own and just as the script makes it.
pub(super) fn copy(config: &Config, os: &FakeOs) -> FakeOs {
    let running = os.colors_running();
    let copy = os.clone();
    let runtime = Runtime::new(config, ComposeTool::V1);
    for (color, port, id) in running {
        let color = if color == "blue" {
            crate::color::Color::Blue
        } else {
            crate::color::Color::Green
        };
        let reference = format!("{}{id}", crate::build::artifact::RELEASE_PREFIX);
        let started = copy.run_now(&runtime.start_kept(config, color, &reference));
        assert!(started.status.success(), "restarting {color}: {started:?}");
        assert!(
            copy.wait_listening(port, Duration::from_secs(10)),
            "{color} of the copy did not listen on {port}"
        );
    }
    copy
}

/// Runs one command on the machine; `None` when the fault killed bluegreen. The lock holder
/// must have ended within a few seconds of the run's end (else the lock counts as held).
pub(super) async fn run(
    config: &Config,
    os: FakeOs,
    command: Command,
    fault: Option<(usize, FaultKind)>,
) -> (FakeOs, Option<anyhow::Result<Summary>>) {
    let (cancel, trigger) = Cancel::manual();
    let host = FakeOsHost::new(os, trigger, config.command_timeout);
    if let Some((at, kind)) = fault {
        host.fault_at(at, kind);
    }
    let printer = Printer::new(Style::Plain);
    let process = super::is_process(config);
    let ctx = Ctx {
        config,
        host: &host,
        printer: &printer,
        runtime: Runtime::new(config, ComposeTool::V1).with_release(match command {
            Command::Deploy(tag) if process => Some(super::release(tag)),
            _ => None,
        }),
        cancel,
        github: None,
        prefetched: Default::default(),
    };
    let work = async {
        match command {
            Command::Deploy(tag) => {
                let reference = if process {
                    super::release(tag).reference()
                } else {
                    format!("reg.example/app:{tag}")
                };
                super::super::deploy::deploy(&ctx, &reference, "abc1234", false, false).await
            }
            Command::Rollback => {
                super::super::rollback::rollback_to(
                    &ctx,
                    &super::super::rollback::To::Previous,
                    "--to",
                )
                .await
            }
        }
    };
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        _ = host.killed.notified() => None,
    };
    drop(ctx);
    let settled = host.settle(Duration::from_secs(10)).await;
    let mut os = host.into_os();
    os.lock_outlived |= !settled;
    (os, outcome)
}

/// Runs the commands cleanly (no fault) to reach a starting state.
pub(super) async fn prepared_on(config: &Config, mut os: FakeOs, commands: &[Command]) -> FakeOs {
    for command in commands {
        let (next, outcome) = run(config, os, *command, None).await;
        outcome
            .unwrap()
            .unwrap_or_else(|e| panic!("preparing with {command:?}: {e:#}"));
        os = next;
    }
    os
}

pub(super) async fn prepared(config: &Config, commands: &[Command]) -> FakeOs {
    prepared_on(config, machine(), commands).await
}

/// A clean deploy on the fake machine ran the real scripts: the containers, the switch file,
/// what nginx loaded, state.json and the history are the stand-ins' and scripts' doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_deploy_runs_the_real_scripts_on_the_fake_machine() {
    let config = config();
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    let two = prepared_on(&config, one.clone(), &[Command::Deploy("v2")]).await;
    assert_eq!(
        two.serving(),
        Some((8082, two.digest_of("reg.example/app:v2")))
    );
    assert_eq!(
        two.read(SWITCH).unwrap(),
        "set $service_url http://127.0.0.1:8082;\n"
    );
    let blue = &two.containers()["app-blue"];
    assert!(!blue.running, "{blue:?}");
    assert_eq!(
        two.state()["live_image"],
        two.digest_of("reg.example/app:v2")
    );
    assert_eq!(two.history_len(), 2);
    assert!(!two.lock_held());
    assert!(!two.leftover_reading());
    assert!(
        two.log
            .iter()
            .any(|l| l.contains("<bluegreen-port-holders>")),
        "{:#?}",
        two.log
    );
}

#[tokio::test]
async fn every_fault_at_every_step_keeps_the_invariant() {
    let config = config();
    let first = machine();
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    let two = prepared_on(&config, one.clone(), &[Command::Deploy("v2")]).await;
    let after_failure = {
        let (os, outcome) = run(&config, two.clone(), Command::Deploy("bad"), None).await;
        assert!(outcome.unwrap().is_err());
        os
    };
    let mut cases = 0;
    cases += every_fault(&config, "first deploy", &first, Command::Deploy("v1")).await;
    cases += every_fault(&config, "second deploy", &one, Command::Deploy("v2")).await;
    cases += every_fault(&config, "third deploy", &two, Command::Deploy("v3")).await;
    cases += every_fault(
        &config,
        "deploy after a failed one",
        &after_failure,
        Command::Deploy("v3"),
    )
    .await;
    cases += every_fault(&config, "rollback", &two, Command::Rollback).await;
    cases += every_fault(
        &config,
        "rollback after a failed deploy",
        &after_failure,
        Command::Rollback,
    )
    .await;
    eprintln!("fault injection on the fake OS: {cases} cases");
    assert!(cases >= 300, "only {cases} cases");
}

/// The command lines of `after`'s run from `before` that contain `word`.
fn ran_with(before: &FakeOs, after: &FakeOs, word: &str) -> Vec<String> {
    after.log[before.log.len()..]
        .iter()
        .filter(|line| line.contains(word))
        .cloned()
        .collect()
}

/// `auto` choosing nftables on a server an nginx switch served until now (nft installed
/// since): the first switch moves the switch file to the service port (one reload), later ones
/// only replace the rule; every fault keeps the invariant, and a rule lost to a reboot is put
/// back first.
#[tokio::test]
async fn auto_nftables_keeps_the_invariant_under_every_fault() {
    let config = nftables_config();
    let nginx_era = prepared(&super::on_fake_os::config(), &[Command::Deploy("v1")]).await;
    assert_eq!(nginx_era.dnat_rules(), []);
    let with_nft = nginx_era.clone();
    with_nft.install("nft");
    let one = prepared_on(&config, with_nft.clone(), &[Command::Deploy("v2")]).await;
    assert!(one.read(SWITCH).unwrap().contains("127.0.0.1:8080"));
    assert_eq!(one.dnat_rules(), [("bluegreen_app".to_owned(), 8080, 8082)]);
    assert_eq!(
        one.serving().unwrap().1,
        one.digest_of("reg.example/app:v2")
    );
    let two = prepared_on(&config, one.clone(), &[Command::Deploy("v3")]).await;
    assert_eq!(
        ran_with(&one, &two, "reload"),
        Vec::<String>::new(),
        "a later switch reloaded nginx"
    );
    assert_eq!(two.dnat_rules(), [("bluegreen_app".to_owned(), 8080, 8081)]);
    // The drain waits for workers from before a reload only in the run that reloaded (its
    // third argument is nginx's port; 0 without a reload).
    let first_drain = ran_with(&with_nft, &one, "bluegreen-drain").remove(0);
    let later_drain = ran_with(&one, &two, "bluegreen-drain").remove(0);
    assert!(!first_drain.ends_with(" 0"), "{first_drain}");
    assert!(later_drain.ends_with(" 0"), "{later_drain}");
    // With the DNAT rule the drain reads the connection tracking table: with sudo.
    assert!(one.privileged.contains(&first_drain));
    assert!(two.privileged.contains(&later_drain));
    let nginx_two = prepared_on(
        &super::on_fake_os::config(),
        nginx_era.clone(),
        &[Command::Deploy("v2")],
    )
    .await;
    let nginx_drain = ran_with(&nginx_era, &nginx_two, "bluegreen-drain").remove(0);
    assert!(
        !nginx_two.privileged.contains(&nginx_drain),
        "{nginx_drain}"
    );

    let fresh = machine();
    fresh.install("nft");
    let mut cases = 0;
    cases += every_fault(&config, "auto: first deploy", &fresh, Command::Deploy("v1")).await;
    cases += every_fault(
        &config,
        "auto: from an nginx switch",
        &with_nft,
        Command::Deploy("v2"),
    )
    .await;
    cases += every_fault(&config, "auto: next deploy", &one, Command::Deploy("v3")).await;
    cases += every_fault(&config, "auto: rollback", &two, Command::Rollback).await;
    eprintln!("auto-nftables fault injection on the fake OS: {cases} cases");
    assert!(cases >= 150, "only {cases} cases");

    let rebooted = two.clone();
    std::fs::remove_file(rebooted.path("os/nft/bluegreen_app")).unwrap();
    assert_eq!(rebooted.serving(), None);
    let (healed, outcome) = run(&config, rebooted, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(healed.serving().unwrap().1, summary.image);
}

/// Process mode through the same faults: uploads, starts from releases (real supervisors and
/// apps: the stand-in `java` is a `sleep`), rollback to the kept release (no upload), a release
/// that is unhealthy.
#[tokio::test]
async fn process_mode_keeps_the_invariant_under_every_fault() {
    let config = process_config();
    let one = prepared_on(&config, process_machine(), &[Command::Deploy("v1")]).await;
    let two = prepared_on(&config, copy(&config, &one), &[Command::Deploy("v2")]).await;
    let v2 = super::release("v2").reference();
    assert_eq!(two.serving(), Some((8082, v2)));
    let releases = std::fs::read_dir(two.path("state/releases")).unwrap();
    assert_eq!(releases.count(), 2);
    let after_failure = {
        let (os, outcome) = run(&config, copy(&config, &two), Command::Deploy("bad"), None).await;
        assert!(outcome.unwrap().is_err());
        os
    };
    let mut cases = 0;
    cases += every_fault(
        &config,
        "process: second deploy",
        &one,
        Command::Deploy("v2"),
    )
    .await;
    cases += every_fault(&config, "process: rollback", &two, Command::Rollback).await;
    cases += every_fault(
        &config,
        "process: rollback after a failed deploy",
        &after_failure,
        Command::Rollback,
    )
    .await;
    let (back, outcome) = run(&config, after_failure, Command::Rollback, None).await;
    let v1 = super::release("v1").reference();
    assert_eq!(outcome.unwrap().unwrap().image, v1);
    assert_eq!(back.serving(), Some((8081, v1)));
    eprintln!("process-mode fault injection on the fake OS: {cases} cases");
    assert!(cases >= 100, "only {cases} cases");
}
