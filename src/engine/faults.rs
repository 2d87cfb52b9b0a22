//! Exhaustive fault injection: for deploy and rollback, from several server states, every
//! command of the run gets every fault (non-zero exit, connection lost, hang past the deadline,
//! SIGTERM, bluegreen killed — then the next deploy), and after each the invariant is asserted:
//! (a) nginx routes to a running, healthy color (the old one, or the new one after a verified
//!     switch); (b) the last good image stays the rollback target, and a rollback reaches it;
//! (c) the lock is free; (d) the history gained one entry (none when the fault hit the lock or the
//! record itself: without the lock nothing may be written); (e) the result says truthfully what
//! serves; (f) nothing that is not bluegreen's was touched (an unrelated process, another app's
//! DNAT rule).
//!
//! The matrix runs on the fake operating system ([`on_fake_os`]): the real server scripts on
//! stand-in `docker`, `nginx`, `nft`, `ss`. This file keeps the checks, shared by both fakes
//! through [`machine::Machine`], and the in-memory fake host's helpers, still used by the runs
//! that count requests (`impact_runs.rs`) and by the plan, round-trip and batch-directory tests
//! below.

use super::swap::Summary;
use super::{Cancel, Ctx, Runtime};
use crate::build::artifact::Release;
use crate::printer::{Printer, Style};
use crate::server::compose::ComposeTool;
use crate::settings::Config;
use crate::testing::fake_host::{FakeHost, FaultKind, Server};
use machine::Machine;

mod machine;
mod on_fake_os;
mod single_runs;
mod this_round;

const NGINX_PORT: u16 = 80;
const SWITCH: &str = "/etc/nginx/conf.d/service-url.inc";

pub(super) fn config() -> Config {
    fast(crate::testing::config(&[
        ("image", "reg.example/app"),
        ("username", "root"),
        ("health_interval", "5ms"),
        ("health_timeout", "100ms"),
        ("state_dir", "/srv/state"),
        ("nginx_switch_file", SWITCH),
    ]))
}

/// A 20 ms command deadline, so a hung fake command ends at once (settings refuse below 1 s:
/// the real server counts whole seconds).
pub(super) fn fast(mut config: Config) -> Config {
    config.command_timeout = std::time::Duration::from_millis(20);
    config
}

/// The local artifact of a version (process mode).
fn release(tag: &str) -> Release {
    Release::from_bytes("app.jar", format!("jar {tag}").into_bytes())
}

fn is_process(config: &Config) -> bool {
    matches!(config.mode, crate::settings::Mode::Process(_))
}

/// The fake server for `config`'s mode. In process mode each version's "digest" is its
/// release reference, so the invariant checks read the same.
fn server_for(config: &Config) -> Server {
    if !is_process(config) {
        return server();
    }
    let mut server = Server::new(NGINX_PORT, SWITCH);
    for (tag, healthy) in [("v1", true), ("v2", true), ("v3", true), ("bad", false)] {
        let release = release(tag);
        server.registry.insert(
            format!("reg.example/app:{tag}"),
            crate::testing::fake_host::Image {
                digest_ref: release.reference(),
                id: release.id,
                healthy,
                errors_every: 0,
            },
        );
    }
    server
}

pub(super) fn server() -> Server {
    let mut server = Server::new(NGINX_PORT, SWITCH);
    for (tag, healthy) in [("v1", true), ("v2", true), ("v3", true), ("bad", false)] {
        server.push_image(&format!("reg.example/app:{tag}"), healthy);
    }
    server
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Command {
    Deploy(&'static str),
    Rollback,
}

/// Runs one command; `None` when the fault killed bluegreen.
pub(super) async fn run(
    config: &Config,
    server: Server,
    command: Command,
    fault: Option<(usize, FaultKind)>,
) -> (Server, Option<anyhow::Result<Summary>>) {
    let (cancel, trigger) = Cancel::manual();
    let host = FakeHost::new(server, trigger, config.command_timeout);
    if let Some((at, kind)) = fault {
        host.fault_at(at, kind);
    }
    let printer = Printer::new(Style::Plain);
    let ctx = Ctx {
        config,
        host: &host,
        printer: &printer,
        runtime: Runtime::new(config, ComposeTool::V1).with_release(match command {
            Command::Deploy(tag) if is_process(config) => Some(release(tag)),
            _ => None,
        }),
        cancel,
        github: None,
        prefetched: Default::default(),
    };
    let work = async {
        match command {
            Command::Deploy(tag) => {
                let reference = if is_process(config) {
                    release(tag).reference()
                } else {
                    format!("reg.example/app:{tag}")
                };
                super::deploy::deploy(&ctx, &reference, "abc1234", false, false).await
            }
            Command::Rollback => {
                use super::rollback::{rollback_to, To};
                rollback_to(&ctx, &To::Previous, "--to").await
            }
        }
    };
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        _ = host.killed.notified() => None,
    };
    drop(ctx);
    let server = host.server.lock().unwrap().clone();
    (server, outcome)
}

/// What serves through nginx: (port, image) of a running, healthy container.
pub(super) fn serving(server: &Server) -> Option<(u16, String)> {
    let port = server.routed_port()?;
    let container = server
        .containers
        .values()
        .find(|c| c.running && c.port == port)?;
    let image = server
        .registry
        .values()
        .find(|i| i.digest_ref == container.image_ref)?;
    image.healthy.then(|| (port, container.image_ref.clone()))
}

pub(super) fn state_of(server: &Server) -> serde_json::Value {
    server
        .files
        .get("state.json")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The newest history entry.
pub(super) fn last_history_entry(server: &Server) -> serde_json::Value {
    let history = &server.files["history.jsonl"];
    serde_json::from_str(history.lines().last().expect("an entry")).unwrap()
}

pub(super) fn digest_of(server: &Server, tag: &str) -> String {
    server.registry[&format!("reg.example/app:{tag}")]
        .digest_ref
        .clone()
}

/// Runs the commands cleanly (no fault) to reach a starting state.
pub(super) async fn prepared(config: &Config, commands: &[Command]) -> Server {
    prepared_on(config, server_for(config), commands).await
}

async fn prepared_on(config: &Config, mut server: Server, commands: &[Command]) -> Server {
    for command in commands {
        let (next, outcome) = run(config, server, *command, None).await;
        outcome
            .unwrap()
            .unwrap_or_else(|e| panic!("preparing with {command:?}: {e:#}"));
        server = next;
    }
    server
}

struct Case<'a, M> {
    name: String,
    before: &'a M,
    command: Command,
}

/// Asserts the invariant after `outcome` of the case; returns a description when it fails.
fn check<M: Machine>(
    config: &Config,
    case: &Case<M>,
    after: &M,
    outcome: &anyhow::Result<Summary>,
    faulted_record: bool,
) -> Result<(), String> {
    let before_serving = case.before.serving();
    after.untouched()?;
    if after.lock_held() {
        return Err("the lock is still held".into());
    }
    let entries = after.history_len() - case.before.history_len();
    if entries != 1 && !(faulted_record && entries == 0) {
        return Err(format!("the history gained {entries} entries"));
    }
    match outcome {
        Ok(summary) if summary.unchanged => {
            if after.serving() != before_serving {
                return Err("an unchanged run changed what serves".into());
            }
        }
        Ok(summary) => {
            let port = config.port_of(summary.new);
            match after.serving() {
                Some((p, image)) if p == port && image == summary.image => {}
                other => {
                    return Err(format!(
                        "exit 0 claims {} serves {}, but nginx serves {other:?}",
                        summary.new, summary.image
                    ))
                }
            }
            let expected = match case.command {
                Command::Deploy(tag) => after.digest_of(tag),
                Command::Rollback => case.before.state()["previous_image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            };
            if summary.image != expected {
                return Err(format!("deployed {} instead of {expected}", summary.image));
            }
            let state = after.state();
            if state["live_image"] != summary.image.as_str() {
                return Err(format!("state.json says {} is live", state["live_image"]));
            }
        }
        Err(error) => {
            if crate::failure::exit_code(error) != 1 {
                return Err(format!(
                    "exit {} for a failed run",
                    crate::failure::exit_code(error)
                ));
            }
            if before_serving.is_some() && after.serving() != before_serving {
                return Err(format!(
                    "after a failure nginx serves {:?} instead of {before_serving:?}: {error:#}",
                    after.serving()
                ));
            }
            let text = format!("{error:#}");
            if before_serving.is_some()
                && !text.contains("still serves traffic")
                && !text.contains("nothing on the server was changed")
            {
                return Err(format!("the error does not say what serves: {error:#}"));
            }
            // The new color is stopped again, unless the error says stopping it failed.
            if let Command::Deploy(tag) = case.command {
                let new = after.digest_of(tag);
                let left_running = after.running().iter().any(|(port, image)| {
                    *image == new && after.serving().is_none_or(|(p, _)| p != *port)
                });
                let said = text.contains("also failed") || text.contains("may still be running");
                if left_running && !said {
                    return Err(format!("the new color was left running: {error:#}"));
                }
            }
            let (was, is) = (case.before.state(), after.state());
            if was["live_image"] != is["live_image"]
                || was["previous_image"] != is["previous_image"]
            {
                return Err(format!(
                    "a failed run changed state.json from {was} to {is}"
                ));
            }
        }
    }
    Ok(())
}

fn leftover_reading(server: &Server) -> bool {
    server
        .files
        .keys()
        .any(|f| f.contains("bluegreen-connections."))
}

/// A command of [`super::observe::readings`], as the fake host logs it.
fn is_reading(line: &str) -> bool {
    line.contains("bluegreen-read-state")
        || line.contains("bluegreen-port-holders")
        || line.starts_with("docker inspect")
        || line.starts_with("nft list")
        || line.contains("bluegreen-switch-probe")
        || line.contains("bluegreen-process-status")
        || line.contains("bluegreen-service-port-users")
}

/// Faults that break the lock's channel when they hit a reading its holder runs.
fn faulted_lock_channel(kind: FaultKind) -> bool {
    matches!(kind, FaultKind::ConnectionLost | FaultKind::Kill)
}

/// How many cases run at once: each mostly waits for its commands' processes.
const PARALLEL_CASES: usize = 6;

/// What the engine says when the undo after a signal ran out of its fixed budget.
const UNDO_OVERRUN: &str = "undoing did not finish within";

/// Taken for reading by every case, for writing by a SIGTERM case (it then runs alone).
static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Holds [`EXCLUSIVE`] one way or the other while a case runs.
enum Exclusive {
    Read(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Write(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

/// Every fault at every command of `command` from `before`; returns how many cases ran.
async fn every_fault<M: Machine + 'static>(
    config: &Config,
    name: &str,
    before: &M,
    command: Command,
) -> usize {
    let (clean_after, clean) = M::run(config, before.copy(config), command, None).await;
    let clean = clean.unwrap();
    assert!(
        !clean_after.leftover_reading(),
        "{name}: a reading of the connections was left on the server"
    );
    let commands = clean_after.log().len() - before.log().len();
    assert!(
        commands > 3,
        "{name}: only {commands} commands; clean outcome {:?}",
        clean.as_ref().err()
    );
    let cases: Vec<(usize, FaultKind)> = (0..commands)
        .flat_map(|at| FaultKind::ALL.map(|kind| (at, kind)))
        .collect();
    let local = tokio::task::LocalSet::new();
    let permits = std::rc::Rc::new(tokio::sync::Semaphore::new(PARALLEL_CASES));
    let before = std::rc::Rc::new(before.copy(config));
    let handles: Vec<_> = cases
        .iter()
        .map(|&(at, kind)| {
            let (config, before, permits) = (config.clone(), before.clone(), permits.clone());
            let name = format!("{name}, {kind:?} at command {at}");
            local.spawn_local(async move {
                // After SIGTERM the undo has a fixed budget (UNDO_BUDGET, 2.5 s of wall time): a
                // case that sends it runs alone, in this process (every matrix test), as one
                // deploy on a server would, not beside other cases' processes.
                let _alone = match kind {
                    FaultKind::Sigterm => Exclusive::Write(EXCLUSIVE.write().await),
                    _ => Exclusive::Read(EXCLUSIVE.read().await),
                };
                let _permit = permits.acquire().await.expect("never closed");
                let mut verdict =
                    one_case(&config, &name, before.as_ref(), command, at, kind).await;
                // On a machine loaded far beyond a server (other builds on 2 cores), the undo's
                // real commands can still overrun that budget: such a case runs once more; a
                // second overrun, or any other problem, fails it.
                if verdict.as_ref().is_err_and(|p| p.contains(UNDO_OVERRUN)) {
                    eprintln!(
                        "{name}: the undo overran its budget on this loaded machine; once more"
                    );
                    verdict = one_case(&config, &name, before.as_ref(), command, at, kind).await;
                }
                verdict.err().map(|problem| format!("{name}: {problem}"))
            })
        })
        .collect();
    let failures: Vec<String> = local
        .run_until(async {
            let mut failures = Vec::new();
            for handle in handles {
                failures.extend(handle.await.expect("a case panicked"));
            }
            failures
        })
        .await;
    assert!(
        failures.is_empty(),
        "{} of {} cases broke the invariant:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

/// `kind` at the `at`-th command of `command` from `before`, then the invariant.
async fn one_case<M: Machine>(
    config: &Config,
    name: &str,
    before: &M,
    command: Command,
    at: usize,
    kind: FaultKind,
) -> Result<(), String> {
    let case = Case {
        name: name.to_owned(),
        before,
        command,
    };
    let (after, outcome) = M::run(config, before.copy(config), command, Some((at, kind))).await;
    let faulted = after
        .log()
        .get(before.log().len() + at)
        .cloned()
        .unwrap_or_default();
    // A run that could not record (or never got the lock, so must not write) adds none;
    // nor one whose lock's channel broke (the readings run on it; the entry goes on it).
    let in_lock_channel = after.log()[before.log().len()..]
        .iter()
        .take(at + 1)
        .skip(1)
        .all(|line| is_reading(line));
    let faulted_record = faulted.contains("bluegreen-record")
        || faulted.contains("bluegreen-lock")
        || at == 0
        || (in_lock_channel && faulted_lock_channel(kind));
    // Only a fault in the reading itself may leave it (the next reading removes it after ten
    // minutes).
    let faulted_reading = faulted.contains("bluegreen-connections");
    match outcome {
        Some(_) if !faulted_reading && after.leftover_reading() => {
            Err("a reading of the connections was left on the server".into())
        }
        Some(outcome) => check(config, &case, &after, &outcome, faulted_record),
        None => {
            // Killed: the next deploy must put everything right by itself.
            let killed = Case {
                name: case.name.clone(),
                before: &after,
                command: Command::Deploy("v3"),
            };
            if after.lock_held() {
                return Err("the lock outlived the killed process".into());
            }
            let (next, outcome) =
                M::run(config, after.copy(config), Command::Deploy("v3"), None).await;
            let outcome = outcome.unwrap();
            match &outcome {
                Err(e) => Err(format!("the next deploy after the kill failed: {e:#}")),
                Ok(_) => check(config, &killed, &next, &outcome, false),
            }
        }
    }
}

/// What `traffic_switch: auto` runs where nft works: DNAT of port 8080, and the switch file
/// pointed at 8080 once.
fn auto_nftables_config() -> Config {
    let mut config = config();
    config.traffic_switch = crate::settings::TrafficSwitch::Nftables {
        service_port: 8080,
        owns_switch_file: true,
    };
    config
}

/// `plan` prints exactly the commands a deploy then runs (the lock, which a plan shows as a
/// placeholder, and the recorded values aside).
#[tokio::test]
async fn plan_equals_the_commands_a_deploy_runs() {
    let config = config();
    for before in [
        server(),
        prepared(&config, &[Command::Deploy("v1")]).await,
        prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await,
    ] {
        let (cancel, trigger) = Cancel::manual();
        let host = FakeHost::new(before.clone(), trigger, config.command_timeout);
        let printer = Printer::new(Style::Plain);
        let ctx = Ctx {
            config: &config,
            host: &host,
            printer: &printer,
            runtime: Runtime::new(&config, ComposeTool::V1),
            cancel,
            github: None,
            prefetched: Default::default(),
        };
        let observed = super::observe::observe(&ctx).await.unwrap();
        let (plan, verdict) =
            super::plan::deploy_plan(&ctx, &observed, "reg.example/app:v3", "abc1234");
        verdict.unwrap();
        let (after, outcome) = run(&config, before.clone(), Command::Deploy("v3"), None).await;
        let summary = outcome.unwrap().unwrap();
        let digest = digest_of(&after, "v3");
        let normalise = |line: &str| {
            let line = line.replace(&digest, "<pulled digest>").replace('\'', "");
            match line.find("bluegreen-record ") {
                Some(at) => line[..at].to_owned() + "bluegreen-record",
                None => line.split(" bluegreen-lock ").next().unwrap().to_owned(),
            }
        };
        let planned: Vec<String> = plan
            .iter()
            .filter(|l| !l.starts_with('#'))
            .skip(1) // read server state: run by observe, before the runbook
            .map(|l| normalise(l))
            .collect();
        let skip_observe = |l: &&String| !is_reading(l) && !l.contains("bluegreen-connections");
        let ran: Vec<String> = after.log[before.log.len()..]
            .iter()
            .filter(skip_observe)
            .map(|l| normalise(l))
            .collect();
        let planned: Vec<String> = planned.iter().filter(skip_observe).cloned().collect();
        assert_eq!(
            ran,
            [
                vec![normalise(
                    &plan[plan
                        .iter()
                        .position(|l| l.contains("bluegreen-lock"))
                        .unwrap()]
                )],
                planned
            ]
            .concat(),
            "{}",
            summary.line()
        );
    }
}

/// A swap from a live color takes 5 round trips (lock with its readings, pull,
/// drain-remove-start, switch + record, drain + stop) with either switch, plus 3 when the app
/// does not name its color (as the fake's does not): the containers read again and the two
/// readings of the connections that verify the switch. Each batch counts once, as on the real
/// host (`tests/deploy.rs` checks the 5 there).
#[tokio::test]
async fn a_swap_takes_five_round_trips_and_three_to_verify_by_connections() {
    for config in [config(), auto_nftables_config()] {
        let before = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
        let (after, outcome) = run(&config, before.clone(), Command::Deploy("v3"), None).await;
        let summary = outcome.unwrap().unwrap();
        assert_eq!(
            summary.round_trips,
            5 + 3,
            "{}\n{:#?}",
            summary.line(),
            &after.log[before.log.len()..]
        );
    }
}

/// A server with no temporary directory for batches, under `traffic_switch: auto`: every step
/// runs on its own, `auto` asks its question on its own (it once took "not asked" for an
/// answer, and moved a server that swaps by nftables back to nginx reloads), and the history
/// entry is recorded.
#[tokio::test]
async fn without_a_batch_directory_auto_still_asks_and_the_swap_completes() {
    let mut config = config();
    config.traffic_switch = crate::settings::TrafficSwitch::Auto { service_port: 8080 };
    let mut server = server_for(&config);
    server.nft_works = true;
    let mut before = prepared_on(
        &config,
        server,
        &[Command::Deploy("v1"), Command::Deploy("v2")],
    )
    .await;
    assert_eq!(before.dnat, Some((8080, 8082)));
    before.no_batch_dir = true;
    let (after, outcome) = run(&config, before.clone(), Command::Deploy("v3"), None).await;
    let summary = outcome.unwrap().unwrap();
    let ran = &after.log[before.log.len()..];
    assert_eq!(
        after.dnat,
        Some((8080, 8081)),
        "{}\n{ran:#?}",
        summary.line()
    );
    assert!(!ran.iter().any(|l| l.contains("reload")), "{ran:#?}");
    assert_eq!(after.history_len(), before.history_len() + 1);
    assert_eq!(last_history_entry(&after)["result"], "success");
}
