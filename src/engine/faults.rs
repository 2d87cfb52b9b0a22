//! Exhaustive fault injection on the fake host: for deploy and rollback, from several server
//! states, every command of the run gets every fault (non-zero exit, connection lost, hang past
//! the deadline, SIGTERM, bluegreen killed — then the next deploy), and after each the
//! invariant is asserted:
//! (a) nginx routes to a running, healthy color (the old one, or the new one after a verified
//!     switch); (b) the last good image stays the rollback target, and a rollback reaches it;
//! (c) the lock is free; (d) the history gained one entry (none when the fault hit the lock or the
//! record itself: without the lock nothing may be written); (e) the result says truthfully what
//! serves.

use super::swap::Summary;
use super::{Cancel, Ctx, Runtime};
use crate::build::artifact::Release;
use crate::color::Color;
use crate::printer::{Printer, Style};
use crate::server::compose::ComposeTool;
use crate::settings::Config;
use crate::testing::fake_host::{FakeHost, FaultKind, Server};

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
fn fast(mut config: Config) -> Config {
    config.command_timeout = std::time::Duration::from_millis(20);
    config
}

/// Process mode: the same server, no Docker; the colors run uploaded releases.
fn process_config() -> Config {
    fast(crate::testing::config(&[
        ("app_name", "app"),
        ("run_command", "java -jar {artifact} --server.port={port}"),
        ("username", "root"),
        ("health_interval", "5ms"),
        ("health_timeout", "100ms"),
        ("state_dir", "/srv/state"),
        ("nginx_switch_file", SWITCH),
    ]))
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

struct Case<'a> {
    name: String,
    before: &'a Server,
    command: Command,
}

/// Asserts the invariant after `outcome` of the case; returns a description when it fails.
fn check(
    config: &Config,
    case: &Case,
    after: &Server,
    outcome: &anyhow::Result<Summary>,
    faulted_record: bool,
) -> Result<(), String> {
    let before_serving = serving(case.before);
    if after.lock_held {
        return Err("the lock is still held".into());
    }
    let entries = after.history_len() - case.before.history_len();
    if entries != 1 && !(faulted_record && entries == 0) {
        return Err(format!("the history gained {entries} entries"));
    }
    match outcome {
        Ok(summary) if summary.unchanged => {
            if serving(after) != before_serving {
                return Err("an unchanged run changed what serves".into());
            }
        }
        Ok(summary) => {
            let port = config.port_of(summary.new);
            match serving(after) {
                Some((p, image)) if p == port && image == summary.image => {}
                other => {
                    return Err(format!(
                        "exit 0 claims {} serves {}, but nginx serves {other:?}",
                        summary.new, summary.image
                    ))
                }
            }
            let expected = match case.command {
                Command::Deploy(tag) => digest_of(after, tag),
                Command::Rollback => state_of(case.before)["previous_image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            };
            if summary.image != expected {
                return Err(format!("deployed {} instead of {expected}", summary.image));
            }
            let state = state_of(after);
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
            if before_serving.is_some() && serving(after) != before_serving {
                return Err(format!(
                    "after a failure nginx serves {:?} instead of {before_serving:?}: {error:#}",
                    serving(after)
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
                let new = digest_of(after, tag);
                let left_running = after.containers.values().any(|c| {
                    c.running
                        && c.image_ref == new
                        && serving(after).is_none_or(|(port, _)| port != c.port)
                });
                let said = text.contains("also failed") || text.contains("may still be running");
                if left_running && !said {
                    return Err(format!("the new color was left running: {error:#}"));
                }
            }
            let (was, is) = (state_of(case.before), state_of(after));
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

/// Every fault at every command of `command` from `before`; returns how many cases ran.
async fn every_fault(config: &Config, name: &str, before: &Server, command: Command) -> usize {
    let (clean_after, clean) = run(config, before.clone(), command, None).await;
    let clean = clean.unwrap();
    assert!(
        !leftover_reading(&clean_after),
        "{name}: a reading of the connections was left on the server"
    );
    let commands = {
        let (after, _) = run(config, before.clone(), command, None).await;
        after.log.len() - before.log.len()
    };
    assert!(
        commands > 3,
        "{name}: only {commands} commands; clean outcome {:?}",
        clean.as_ref().err()
    );
    let mut cases = 0;
    let mut failures = Vec::new();
    for at in 0..commands {
        for kind in FaultKind::ALL {
            cases += 1;
            let case = Case {
                name: format!("{name}, {kind:?} at command {at}"),
                before,
                command,
            };
            let (after, outcome) = run(config, before.clone(), command, Some((at, kind))).await;
            let faulted = after
                .log
                .get(before.log.len() + at)
                .cloned()
                .unwrap_or_default();
            // A run that could not record (or never got the lock, so must not write) adds none;
            // nor one whose lock's channel broke (the readings run on it; the entry goes on it).
            let in_lock_channel = after.log[before.log.len()..]
                .iter()
                .take(at + 1)
                .skip(1)
                .all(|line| is_reading(line));
            let faulted_record = faulted.contains("bluegreen-record")
                || faulted.contains("bluegreen-lock")
                || at == 0
                || (in_lock_channel && faulted_lock_channel(kind));
            // Only a fault in the reading itself may leave it (the next reading removes it
            // after ten minutes).
            let faulted_reading = faulted.contains("bluegreen-connections");
            let verdict = match outcome {
                Some(_) if !faulted_reading && leftover_reading(&after) => {
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
                    if after.lock_held {
                        Err("the lock outlived the killed process".into())
                    } else {
                        let (next, outcome) =
                            run(config, after.clone(), Command::Deploy("v3"), None).await;
                        let outcome = outcome.unwrap();
                        match &outcome {
                            Err(e) => Err(format!("the next deploy after the kill failed: {e:#}")),
                            Ok(_) => check(config, &killed, &next, &outcome, false),
                        }
                    }
                }
            };
            if let Err(problem) = verdict {
                failures.push(format!("{}: {problem}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases broke the invariant:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases
}

#[tokio::test]
async fn every_fault_at_every_step_keeps_the_invariant() {
    let config = config();
    let first = server();
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    let two = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
    let after_failure = {
        let (server, outcome) = run(&config, two.clone(), Command::Deploy("bad"), None).await;
        assert!(outcome.unwrap().is_err());
        server
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
    eprintln!("fault injection: {cases} cases");
    assert!(cases >= 300, "only {cases} cases");
}

/// Process mode through the same faults: uploads, starts from releases, rollback to the kept
/// release (no upload), a release that is unhealthy.
#[tokio::test]
async fn process_mode_keeps_the_invariant_under_every_fault() {
    let config = process_config();
    let one = prepared(&config, &[Command::Deploy("v1")]).await;
    let two = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
    assert_eq!(serving(&two), Some((8082, release("v2").reference())));
    assert_eq!(two.releases.len(), 2);
    let after_failure = {
        let (server, outcome) = run(&config, two.clone(), Command::Deploy("bad"), None).await;
        assert!(outcome.unwrap().is_err());
        server
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
    assert_eq!(outcome.unwrap().unwrap().image, release("v1").reference());
    assert_eq!(serving(&back), Some((8081, release("v1").reference())));
    eprintln!("process-mode fault injection: {cases} cases");
    assert!(cases >= 100, "only {cases} cases");
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

/// `auto` choosing nftables on a server an nginx switch served until now: the first switch
/// moves the switch file to the service port (one reload), later ones only replace the rule;
/// every fault keeps the invariant, and a rule lost to a reboot is put back first.
#[tokio::test]
async fn auto_nftables_keeps_the_invariant_under_every_fault() {
    let config = auto_nftables_config();
    let nginx_era = prepared(&super::faults::config(), &[Command::Deploy("v1")]).await;
    assert_eq!(nginx_era.dnat, None);
    let one = prepared_on(&config, nginx_era.clone(), &[Command::Deploy("v2")]).await;
    assert!(one.files[SWITCH].contains("127.0.0.1:8080"));
    assert_eq!(one.dnat, Some((8080, 8082)));
    assert_eq!(serving(&one).unwrap().1, digest_of(&one, "v2"));
    let reloads = |server: &Server| server.log.iter().filter(|l| l.contains("reload")).count();
    let two = prepared_on(&config, one.clone(), &[Command::Deploy("v3")]).await;
    assert_eq!(
        reloads(&two),
        reloads(&one),
        "a later switch reloaded nginx"
    );
    assert_eq!(two.dnat, Some((8080, 8081)));
    // The drain waits for workers from before a reload only in the run that reloaded (its
    // third argument is nginx's port; 0 without a reload).
    let drain_of = |before: &Server, after: &Server| {
        after.log[before.log.len()..]
            .iter()
            .find(|l| l.contains("bluegreen-drain"))
            .cloned()
            .unwrap()
    };
    assert!(
        !drain_of(&nginx_era, &one).ends_with(" 0"),
        "{}",
        drain_of(&nginx_era, &one)
    );
    assert!(
        drain_of(&one, &two).ends_with(" 0"),
        "{}",
        drain_of(&one, &two)
    );
    // With the DNAT rule the drain reads the connection tracking table: with sudo.
    for (before, after) in [(&nginx_era, &one), (&one, &two)] {
        assert!(after.privileged.contains(&drain_of(before, after)));
    }
    let nginx_two = prepared_on(
        &super::faults::config(),
        nginx_era.clone(),
        &[Command::Deploy("v2")],
    )
    .await;
    let nginx_drain = drain_of(&nginx_era, &nginx_two);
    assert!(
        !nginx_two.privileged.contains(&nginx_drain),
        "{nginx_drain}"
    );

    let mut cases = 0;
    cases += every_fault(
        &config,
        "auto: first deploy",
        &server(),
        Command::Deploy("v1"),
    )
    .await;
    cases += every_fault(
        &config,
        "auto: from an nginx switch",
        &nginx_era,
        Command::Deploy("v2"),
    )
    .await;
    cases += every_fault(&config, "auto: next deploy", &one, Command::Deploy("v3")).await;
    cases += every_fault(&config, "auto: rollback", &two, Command::Rollback).await;
    eprintln!("auto-nftables fault injection: {cases} cases");
    assert!(cases >= 150, "only {cases} cases");

    let mut rebooted = two.clone();
    rebooted.dnat = None;
    assert_eq!(serving(&rebooted), None);
    let (healed, outcome) = run(&config, rebooted, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(serving(&healed).unwrap().1, summary.image);
}

#[tokio::test]
async fn rollback_after_a_failed_deploy_returns_to_the_last_good_image() {
    let config = config();
    let two = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
    let (failed, outcome) = run(&config, two.clone(), Command::Deploy("bad"), None).await;
    assert!(outcome.unwrap().is_err());
    // The failed image took blue's name; the rollback must re-create v1, not start it.
    let (back, outcome) = run(&config, failed, Command::Rollback, None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(summary.image, digest_of(&back, "v1"));
    assert_eq!(serving(&back).unwrap().1, digest_of(&back, "v1"));
}

#[tokio::test]
async fn the_image_already_live_changes_nothing() {
    let config = config();
    let two = prepared(&config, &[Command::Deploy("v1"), Command::Deploy("v2")]).await;
    let (after, outcome) = run(&config, two.clone(), Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert!(summary.unchanged, "{}", summary.line());
    // The live color is named, not the color a deploy would have gone to.
    assert!(
        summary.line().starts_with("already live: green serves"),
        "{}",
        summary.line()
    );
    assert_eq!(serving(&after), serving(&two));
    assert_eq!(
        state_of(&after)["previous_image"],
        state_of(&two)["previous_image"]
    );
}

#[tokio::test]
async fn a_switch_nginx_does_not_take_is_switched_back() {
    let config = config();
    let mut one = prepared(&config, &[Command::Deploy("v1")]).await;
    one.nginx_includes_switch = false;
    let (after, outcome) = run(&config, one.clone(), Command::Deploy("v2"), None).await;
    let error = outcome.unwrap().unwrap_err();
    assert!(format!("{error:#}").contains("was not taken"), "{error:#}");
    assert_eq!(serving(&after), serving(&one));
}

/// A new color that fails half the requests through nginx passes health and verification,
/// then fails the bake: traffic goes back to the old color, state.json names it again, and the
/// error line and the history say failed with the counts.
#[tokio::test]
async fn a_new_color_failing_during_the_bake_is_switched_back() {
    let mut config = config();
    config.bake_time = std::time::Duration::from_millis(300);
    let mut one = prepared(&config, &[Command::Deploy("v1")]).await;
    let flaky = one
        .registry
        .get_mut("reg.example/app:v2")
        .expect("v2 is in the registry");
    flaky.errors_every = 2;
    let state_before = state_of(&one);
    let (after, outcome) = run(&config, one.clone(), Command::Deploy("v2"), None).await;
    let error = format!("{:#}", outcome.unwrap().unwrap_err());
    assert!(error.contains("during the bake"), "{error}");
    assert!(error.contains("above bake_max_error_rate 1%"), "{error}");
    assert!(error.contains("blue still serves traffic"), "{error}");
    assert!(
        error.contains("probe requests through nginx during the switch ("),
        "{error}"
    );
    assert_eq!(serving(&after), serving(&one));
    assert_eq!(state_of(&after), state_before);
    let entry = last_history_entry(&after);
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
        serving(&after).map(|(_, image)| image),
        Some(digest_of(&after, "v2"))
    );
}

/// A running container without bluegreen's labels, publishing `port`.
fn started_by_an_old_script(image_ref: String, port: u16) -> crate::testing::fake_host::Container {
    crate::testing::fake_host::Container {
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
    let mut before = server();
    let old_image = digest_of(&before, "v1");
    before.containers.insert(
        "app-blue".into(),
        started_by_an_old_script(old_image.clone(), 8081),
    );
    before.files.insert(
        SWITCH.into(),
        "set $service_url http://127.0.0.1:8081;\n".into(),
    );
    before.nginx_loaded = before.files.get(SWITCH).cloned();
    let (after, outcome) = run(&config, before, Command::Deploy("v2"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(summary.new, Color::Green, "{}", summary.line());
    assert_eq!(serving(&after), Some((8082, digest_of(&after, "v2"))));
    let kept = &after.containers["app-blue-before-bluegreen"];
    assert!(!kept.running && kept.image_ref == old_image);
    assert_eq!(state_of(&after)["previous_image"], serde_json::Value::Null);
    let (again, outcome) = run(&config, after, Command::Deploy("v3"), None).await;
    let summary = outcome.unwrap().unwrap();
    assert_eq!(summary.new, Color::Blue, "{}", summary.line());
    assert_eq!(serving(&again), Some((8081, digest_of(&again, "v3"))));
    assert!(again.containers.contains_key("app-blue-before-bluegreen"));
}

/// Something bluegreen did not start on the idle color's port: refused before any change.
#[tokio::test]
async fn a_foreign_app_on_the_idle_port_is_refused_before_any_change() {
    let config = config();
    let mut before = prepared(&config, &[Command::Deploy("v1")]).await;
    before.containers.insert(
        "legacy".into(),
        started_by_an_old_script("old/app:1".into(), 8082),
    );
    let commands_before = before.log.len();
    let (after, outcome) = run(&config, before.clone(), Command::Deploy("v2"), None).await;
    let error = format!("{:#}", outcome.unwrap().unwrap_err());
    assert!(
        error.contains("green's port 8082 is held by container legacy (old/app:1)")
            && error.contains("`docker stop legacy`")
            && error.contains("nothing was changed"),
        "{error}"
    );
    assert_eq!(serving(&after), serving(&before));
    assert!(after.log[commands_before..]
        .iter()
        .all(|l| !l.starts_with("docker run") && !l.contains("pull")));
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
