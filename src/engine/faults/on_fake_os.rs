//! The fault matrix on the fake operating system: bluegreen's commands run for real (the real
//! server scripts, on stand-in `docker`, `nginx`, `nft`, `ss`), every fault at every command,
//! and the invariants of [`super::check`] read from the stand-ins' state files.

use std::time::Duration;

use crate::engine::swap::Summary;
use super::{Cancel, Command, Ctx, Runtime};
use crate::printer::{Printer, Style};
use crate::server::compose::ComposeTool;
use crate::settings::Config;
use crate::testing::fake_os::{FakeOs, FakeOsHost, FaultKind, STATE_DIR, SWITCH};

/// The matrix's settings on the fake machine: its state directory and switch file lie in the
/// machine's directory (`~` and the working directory of every command).
pub(super) fn config() -> Config {
    crate::testing::config(&[
        ("image", "reg.example/app"),
        ("username", "root"),
        ("health_interval", "5ms"),
        ("health_timeout", "100ms"),
        ("command_timeout", "20ms"),
        ("state_dir", STATE_DIR),
        ("nginx_switch_file", SWITCH),
    ])
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
    let ctx = Ctx {
        config,
        host: &host,
        printer: &printer,
        runtime: Runtime::new(config, ComposeTool::V1),
        cancel,
        github: None,
        prefetched: Default::default(),
    };
    let work = async {
        match command {
            Command::Deploy(tag) => {
                let reference = format!("reg.example/app:{tag}");
                super::super::deploy::deploy(&ctx, &reference, "abc1234", false, false).await
            }
            Command::Rollback => super::super::rollback::rollback(&ctx).await,
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
    assert_eq!(two.state()["live_image"], two.digest_of("reg.example/app:v2"));
    assert_eq!(two.history_len(), 2);
    assert!(!two.lock_held());
    assert!(!two.leftover_reading());
    assert!(
        two.log.iter().any(|l| l.contains("<bluegreen-port-holders>")),
        "{:#?}",
        two.log
    );
}
