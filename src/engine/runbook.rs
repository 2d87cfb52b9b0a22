//! Deploy and rollback as data: a list of typed steps, each with what a failure at that step
//! must undo. `plan` prints this list; the runner ([`super::swap`]) executes the very same list,
//! so the plan cannot drift from what a deploy does.

use super::observe::Observed;
use super::{switch, Ctx};
use crate::color::Color;
use crate::failure::Failure;
use crate::remote::Host;
use crate::server::docker::{self, RunSpec};
use crate::server::{nginx, ServerCommand};
use crate::settings::TrafficSwitch;

/// Where the image of a start step comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Image {
    /// The digest the pull step resolved (unknown until it ran).
    Pulled,
    /// A reference known in advance (a rollback's recorded digest).
    Known(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Points nginx back at the color that really serves, before anything else changes
    /// (the switch file disagreed with the last verified state).
    Repoint(Color),
    /// Logs in and pulls; resolves the digest that every later step runs.
    Pull(String),
    /// Stops here, changing nothing, when the pulled digest is already live (unless `--force`).
    StopIfLive,
    /// Waits until the color has no established connection left (it may still get requests).
    Drain(Color),
    /// Removes the idle color's container so its name can be reused.
    Remove(Color),
    /// Starts a fresh container of the image as the color, labelled with the commit.
    Start(Color, Image, String),
    /// Starts the color's kept container, which holds the wanted image.
    StartKept(Color, String),
    /// Fails unless the started color runs the pulled image (compose files with a fixed tag).
    CheckRunsImage(Color),
    WaitHealthy(Color),
    Switch(Color),
    /// Proves through nginx that the color receives the requests.
    Verify(Color),
    /// Writes state.json (the new live and previous images); the history entry follows at the
    /// end of the run.
    Record,
    /// Keeps the old color running for `bake_time` while the new one's failures through nginx
    /// are counted; above `bake_max_error_rate` traffic switches back.
    Bake(Color),
    Stop(Color),
    /// Stops the app an earlier setup started on the old color's port (adopted); a container
    /// under our name is renamed so the color's name is free; nothing is removed.
    StopAdopted(Color),
    /// An operator's command (`pre_switch_command`, `post_deploy_command`) for the new color.
    Hook(Hook, Color),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// After the new color is healthy, before traffic moves; a failure aborts safely.
    PreSwitch,
    /// After a successful deploy; a failure is reported, never undone.
    PostDeploy,
}

impl Hook {
    pub fn setting(self) -> &'static str {
        match self {
            Hook::PreSwitch => "pre_switch_command",
            Hook::PostDeploy => "post_deploy_command",
        }
    }

    fn command(self, config: &crate::settings::Config) -> Option<&str> {
        match self {
            Hook::PreSwitch => config.pre_switch_command.as_deref(),
            Hook::PostDeploy => config.post_deploy_command.as_deref(),
        }
    }
}

/// What a failure at a step leaves to undo. Later steps undo more (the order is that of the
/// variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Undo {
    /// Nothing was changed yet.
    Nothing,
    /// The new color was (maybe) started: stop it.
    StopNew,
    /// nginx may point at the new color: switch back, then stop it.
    SwitchBack,
    /// The new color serves, verified and recorded: report, never undo.
    Report,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub step: Step,
    pub undo: Undo,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Runbook {
    pub target: Color,
    /// The color serving before (running), stopped at the end.
    pub old: Option<Color>,
    pub entries: Vec<Entry>,
}

/// The steps of a deploy of `image_ref` after `observed`; `Err` is a refusal (nothing changed).
pub fn deploy<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    image_ref: &str,
    sha: &str,
) -> Result<Runbook, Failure> {
    refuse_foreign(ctx, observed)?;
    let target = observed.target();
    let mut entries = repoint(observed);
    entries.push(entry(Step::Pull(image_ref.to_owned()), Undo::Nothing));
    entries.push(entry(Step::StopIfLive, Undo::Nothing));
    entries.extend(replace_idle(observed, target));
    entries.push(entry(
        Step::Start(target, Image::Pulled, sha.to_owned()),
        Undo::StopNew,
    ));
    if matches!(ctx.runtime, super::Runtime::Compose(_)) {
        entries.push(entry(Step::CheckRunsImage(target), Undo::StopNew));
    }
    Ok(finish(ctx, observed, target, entries, WithHooks::Yes))
}

/// The steps of a rollback to `restore` (an image that ran before): instant when the idle
/// color's kept container holds it, else started afresh from the digest, with a deploy's
/// checks; `Err`: no color is live (nothing to roll back from).
pub fn rollback<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    restore: &super::rollback::Restore,
) -> Result<Runbook, Failure> {
    let serving = super::swap::serving_now(observed);
    let Some(live) = observed.live else {
        return Err(Failure::deploy(format!(
            "nothing to roll back: no color is live yet; {serving}; nothing was changed; deploy first"
        )));
    };
    refuse_foreign(ctx, observed)?;
    let image = restore.image.clone();
    let target = live.other();
    let mut entries = repoint(observed);
    match observed.containers.get(&target) {
        Some(kept) if kept.image_ref == image && kept.running => {}
        Some(kept) if kept.image_ref == image => {
            entries.push(entry(Step::StartKept(target, image), Undo::StopNew));
        }
        _ => {
            entries.push(entry(Step::Pull(image.clone()), Undo::Nothing));
            entries.extend(replace_idle(observed, target));
            let sha = restore.sha.clone().unwrap_or_else(|| "rollback".into());
            entries.push(entry(
                Step::Start(target, Image::Known(image), sha),
                Undo::StopNew,
            ));
        }
    }
    // A rollback never depends on hooks: a migration must not run backwards.
    Ok(finish(ctx, observed, target, entries, WithHooks::No))
}

fn hook_undo(hook: Hook) -> Undo {
    match hook {
        Hook::PreSwitch => Undo::StopNew,
        Hook::PostDeploy => Undo::Report,
    }
}

fn entry(step: Step, undo: Undo) -> Entry {
    Entry { step, undo }
}

fn repoint(observed: &Observed) -> Vec<Entry> {
    observed
        .repoint
        .map(|color| vec![entry(Step::Repoint(color), Undo::Nothing)])
        .unwrap_or_default()
}

/// The idle color's container goes: drained first when it runs (nginx's old workers or an
/// interrupted switch may still send it requests).
fn replace_idle(observed: &Observed, target: Color) -> Vec<Entry> {
    let mut entries = Vec::new();
    if observed.running(target) {
        entries.push(entry(Step::Drain(target), Undo::Nothing));
    }
    if observed.containers.contains_key(&target) {
        entries.push(entry(Step::Remove(target), Undo::Nothing));
    }
    entries
}

#[derive(PartialEq)]
enum WithHooks {
    Yes,
    No,
}

fn finish<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    target: Color,
    mut entries: Vec<Entry>,
    hooks: WithHooks,
) -> Runbook {
    let old = observed
        .live
        .filter(|live| *live != target && observed.serving(*live));
    let hook = |kind: Hook| {
        (hooks == WithHooks::Yes && kind.command(ctx.config).is_some())
            .then(|| entry(Step::Hook(kind, target), hook_undo(kind)))
    };
    entries.push(entry(Step::WaitHealthy(target), Undo::StopNew));
    entries.extend(hook(Hook::PreSwitch));
    // The record goes with the switch (one round trip): a failed verification restores it.
    entries.extend([
        entry(Step::Switch(target), Undo::SwitchBack),
        entry(Step::Record, Undo::SwitchBack),
        entry(Step::Verify(target), Undo::SwitchBack),
    ]);
    if !ctx.config.bake_time.is_zero() {
        entries.push(entry(Step::Bake(target), Undo::SwitchBack));
    }
    if let Some(old) = old {
        entries.push(entry(Step::Drain(old), Undo::Report));
        let adopted = observed.adopted.as_ref().is_some_and(|a| a.color == old);
        let stop = if adopted {
            Step::StopAdopted(old)
        } else {
            Step::Stop(old)
        };
        entries.push(entry(stop, Undo::Report));
    }
    entries.extend(hook(Hook::PostDeploy));
    Runbook {
        target,
        old,
        entries,
    }
}

/// A container under our color's name that we did not start is never touched, and the
/// target color's port must be free (or held by our own container of that color).
fn refuse_foreign<H: Host>(ctx: &Ctx<'_, H>, observed: &Observed) -> Result<(), Failure> {
    let target = observed.target();
    let config = ctx.config;
    refuse_unreached(ctx, observed)?;
    refuse_shared_service_port(ctx, observed)?;
    let foreign_named = observed.containers.get(&target).filter(|c| !c.ours);
    if let (None, Some(holder)) = (foreign_named, observed.holders.get(&target)) {
        let ours = holder.started_by(&config.app_name)
            && matches!(holder, crate::server::ports::PortHolder::Container { name, .. }
                if *name == docker::container_name(config, target));
        let foreign = matches!(
            holder,
            crate::server::ports::PortHolder::Container { .. }
                | crate::server::ports::PortHolder::Process { .. }
        );
        if foreign && !ours {
            return Err(Failure::deploy(format!(
                "{target}'s port {} is held by {}, which bluegreen did not start; {}; nothing \
                 was changed; free it (`{}`) or choose another {target}_port",
                config.port_of(target),
                holder.describe(),
                super::swap::serving_now(observed),
                holder.freeing_command().unwrap_or_default()
            )));
        }
    }
    match foreign_named {
        Some(foreign) => Err(Failure::deploy(format!(
            "a container named {} exists that bluegreen did not start (no {}={} label); {}; \
             nothing was changed; remove or rename it (docker rm -f {}) or choose another app_name",
            foreign.name,
            docker::LABEL_APP,
            ctx.config.app_name,
            super::swap::serving_now(observed),
            foreign.name
        ))),
        None => Ok(()),
    }
}

/// A listener on a color's port only at an address nginx does not reach (127.0.0.3, say) is
/// not this app's old color, whatever it is: it is never adopted nor stopped; the deploy
/// refuses until the port is only ours.
fn refuse_unreached<H: Host>(ctx: &Ctx<'_, H>, observed: &Observed) -> Result<(), Failure> {
    let config = ctx.config;
    for color in crate::color::Color::BOTH {
        let Some(holder @ crate::server::ports::PortHolder::Foreign { .. }) =
            observed.holders.get(&color)
        else {
            continue;
        };
        return Err(Failure::deploy(format!(
            "{color}'s port {} is held by {}, where nginx (which connects to {}) does not reach              it: it is not this app and bluegreen never stops it; {}; nothing was changed;              move it to another port or choose another {color}_port",
            config.port_of(color),
            holder.describe(),
            crate::server::ports::nginx_address(config),
            super::swap::serving_now(observed),
        )));
    }
    Ok(())
}

/// One service_port per app: another app's DNAT rule (or a listener) for it would make one
/// site serve the other app; refused before anything changes (a setting to fix: exit 2).
fn refuse_shared_service_port<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
) -> Result<(), Failure> {
    let TrafficSwitch::Nftables { service_port, .. } = ctx.config.traffic_switch else {
        return Ok(());
    };
    let Some((cause, fix)) = observed
        .service_port_users
        .as_deref()
        .and_then(|output| crate::server::nft::conflict(service_port, output))
    else {
        return Ok(());
    };
    Err(Failure::config(format!(
        "{cause}; {}; nothing was changed; {fix}",
        super::swap::serving_now(observed)
    )))
}

impl Step {
    /// The server commands of a step that is only commands; `image`: the pulled reference
    /// (`<pulled digest>` in a plan). Steps that wait or verify return none.
    pub fn commands<H: Host>(
        &self,
        ctx: &Ctx<'_, H>,
        observed: &Observed,
        image: &str,
    ) -> Vec<ServerCommand> {
        let config = ctx.config;
        match self {
            Step::Repoint(color) | Step::Switch(color) => switch::commands(ctx, observed, *color),
            Step::Pull(reference) => match &ctx.runtime {
                super::Runtime::Process(process) => {
                    process.put_release(config, reference, &releases_in_use(observed))
                }
                runtime => vec![runtime.pull(config, reference, observed.target())],
            },
            Step::Drain(color) => {
                // Workers from before a reload may still proxy to the old color; without a
                // reload in this run (a DNAT switch) there are none to wait for.
                let reloads = switch::commands(ctx, observed, color.other())
                    .iter()
                    .any(|command| command.purpose == nginx::RELOAD_PURPOSE);
                vec![nginx::drain(
                    config.port_of(*color),
                    config.drain_timeout,
                    reloads.then_some(config.verify_url.port),
                    matches!(config.traffic_switch, TrafficSwitch::Nftables { .. }),
                )]
            }
            Step::Remove(color) => {
                vec![ctx
                    .runtime
                    .remove(config, *color, &image_of(observed, *color))]
            }
            Step::Start(color, source, sha) => {
                let image_ref = match source {
                    Image::Pulled => image,
                    Image::Known(known) => known,
                };
                let spec = RunSpec {
                    color: *color,
                    image_ref,
                    sha,
                };
                ctx.runtime.start_new(config, &spec)
            }
            Step::StartKept(color, image_ref) => {
                vec![ctx.runtime.start_kept(config, *color, image_ref)]
            }
            Step::Stop(color) => ctx
                .runtime
                .stop(config, *color, &image_of(observed, *color)),
            Step::Record => vec![
                crate::server::state::record(&config.state_dir, "<state>", "<history entry>"),
                crate::server::boot::install(config),
            ],
            Step::StopAdopted(color) => match observed.adopted.as_ref().map(|a| &a.holder) {
                Some(crate::server::ports::PortHolder::Container { name, .. }) => {
                    let mut commands =
                        vec![docker::stop_named(name, config.stop_timeout.as_secs())];
                    if *name == docker::container_name(config, *color) {
                        commands.push(docker::rename(name, &format!("{name}-before-bluegreen")));
                    }
                    commands
                }
                Some(crate::server::ports::PortHolder::Process { pid, .. }) => {
                    vec![crate::server::ports::stop_process(
                        *pid,
                        config.stop_timeout,
                    )]
                }
                _ => Vec::new(),
            },
            Step::Hook(hook, color) => {
                let template = hook.command(config).unwrap_or_default();
                let text = template
                    .replace("{color}", &color.to_string())
                    .replace("{port}", &config.port_of(*color).to_string())
                    .replace(
                        "{container}",
                        &ctx.runtime.container_or_service(config, *color),
                    )
                    .replace("{image}", image);
                vec![
                    ServerCommand::operator_shell(format!("run {}", hook.setting()), &text)
                        .privileged(),
                ]
            }
            Step::StopIfLive
            | Step::CheckRunsImage(_)
            | Step::WaitHealthy(_)
            | Step::Verify(_)
            | Step::Bake(_) => Vec::new(),
        }
    }

    /// One line for humans: what the step does.
    pub fn describe<H: Host>(&self, ctx: &Ctx<'_, H>) -> String {
        let config = ctx.config;
        let process = matches!(ctx.runtime, super::Runtime::Process(_));
        match self {
            Step::Repoint(color) => format!(
                "point nginx back at {color}, the color that serves (the switch file disagreed with the recorded state)"
            ),
            Step::Pull(reference) if process => format!(
                "put {reference} on the server: uploaded over SSH unless it is there already; \
                 the newest {} releases are kept (and those the colors run)",
                crate::server::process::KEEP_RELEASES
            ),
            Step::Pull(reference) => format!("pull {reference} (the token, if any, on stdin); the digest is pinned"),
            Step::StopIfLive if process => {
                "stop here, changing nothing, if that release is already live (unless --force)".into()
            }
            Step::Remove(color) if process => {
                format!("remove the idle {color} process (stopped if running; its release stays)")
            }
            Step::StopIfLive => "stop here, changing nothing, if that digest is already live (unless --force)".into(),
            Step::Drain(color) => format!(
                "wait up to {}s for {color}'s connections to end",
                config.drain_timeout.as_secs()
            ),
            Step::Remove(color) => format!("remove the idle {color} container"),
            Step::Start(color, _, _) => format!("start {color}"),
            Step::StartKept(color, image) => format!("start the kept {color} container ({image})"),
            Step::CheckRunsImage(color) => format!("check that {color} runs the pulled image"),
            Step::WaitHealthy(color) => format!(
                "wait for health: GET http://127.0.0.1:{}{} {}, up to {}s",
                config.port_of(*color),
                config.health_path,
                super::health::cadence(config.health_interval),
                config.health_timeout.as_secs()
            ),
            Step::Switch(color) => format!(
                "switch traffic to {color} (restored on failure): {}",
                switch::describe(ctx, *color)
            ),
            Step::Verify(color) => format!(
                "verify: GET {} until {color} is shown to receive the requests (its new connections or its name in the response)",
                config.verify_url.render()
            ),
            Step::Record => "record the new live and previous images (put back if the verification fails)".into(),
            Step::Bake(color) => format!(
                "bake {color}: GET {} every {}ms for {}s while the old color keeps running; switch back if more than {} of the requests fail (5xx or no answer)",
                config.verify_url.render(),
                super::bake::CADENCE.as_millis(),
                config.bake_time.as_secs_f64(),
                super::bake::format_percent(config.bake_max_error_rate)
            ),
            Step::Stop(color) => format!("stop {color}"),
            Step::StopAdopted(color) => format!(
                "stop the app an earlier setup started on {color}'s port (kept, never removed)"
            ),
            Step::Hook(Hook::PreSwitch, color) => format!(
                "run pre_switch_command for {color}, before traffic moves (a failure stops {color}; nothing else changes)"
            ),
            Step::Hook(Hook::PostDeploy, color) => format!(
                "run post_deploy_command for {color} (a failure is reported; the deploy stands)"
            ),
        }
    }
}

/// Process mode: the releases the colors run or state.json names (never pruned).
fn releases_in_use(observed: &Observed) -> Vec<String> {
    let recorded = [&observed.state.live_image, &observed.state.previous_image];
    let mut ids: Vec<String> = observed
        .containers
        .values()
        .map(|c| c.image_ref.as_str())
        .chain(recorded.into_iter().flatten().map(String::as_str))
        .filter_map(crate::build::artifact::release_id)
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The image a color's container runs, as observed.
pub fn image_of(observed: &Observed, color: Color) -> String {
    observed
        .containers
        .get(&color)
        .map(|c| c.image_ref.clone())
        .unwrap_or_default()
}

/// The plan: every step with its commands rendered exactly as they run.
pub fn render<H: Host>(ctx: &Ctx<'_, H>, observed: &Observed, runbook: &Runbook) -> Vec<String> {
    let sudo = ctx.host.sudo();
    // Process mode knows the release in advance: its id stands where a digest is pulled.
    let release = runbook.entries.iter().find_map(|entry| match &entry.step {
        Step::Pull(reference) if matches!(ctx.runtime, super::Runtime::Process(_)) => {
            Some(reference.as_str())
        }
        _ => None,
    });
    let mut lines = Vec::new();
    for entry in &runbook.entries {
        lines.push(format!("# {}", entry.step.describe(ctx)));
        for command in entry
            .step
            .commands(ctx, observed, release.unwrap_or("<pulled digest>"))
        {
            lines.push(command.render(sudo));
        }
    }
    lines
}
