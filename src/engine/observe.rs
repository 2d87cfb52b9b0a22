//! Reads what the server is doing now: the switch file nginx reads, cross-checked with
//! `docker inspect` of the colors' containers, plus state, lock and history. Never guesses.

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::record::{self, HistoryEntry, LockRecord, StateFile};
use super::{Ctx, Runtime};
use crate::color::Color;
use crate::remote::Host;
use crate::server::ports::{self, PortHolder};
use crate::server::{docker, nginx, state, ServerCommand};
use crate::settings::{Config, TrafficSwitch};

#[derive(Clone, Debug, PartialEq)]
pub struct ColorContainer {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub status: String,
    pub restart_count: u64,
    pub exit_code: i64,
    pub image_ref: String,
    /// The local image id it runs (`sha256:…` of the image config), to compare with a pull.
    pub image_id: String,
    /// Its main process on the server while running (0 otherwise).
    pub pid: u32,
    /// The commit it was built from (label `bluegreen.sha`), when known.
    pub sha: Option<String>,
    /// Started by bluegreen for this app (labelled), or a compose service of the file.
    pub ours: bool,
}

#[derive(Debug)]
pub struct Observed {
    /// What nginx's traffic follows ([`super::switch::effective`]): the file, or the table.
    pub switch: Option<String>,
    /// The switch file as read (`None`: absent).
    pub switch_file: Option<String>,
    /// The nftables switch table as listed (`None`: absent, or not the nftables switch).
    pub switch_table: Option<String>,
    pub switch_color: Option<Color>,
    pub live: Option<Color>,
    /// The switch must first be pointed back at this color (it disagreed with what serves).
    pub repoint: Option<Color>,
    pub containers: HashMap<Color, ColorContainer>,
    pub state: StateFile,
    pub lock: Option<LockRecord>,
    pub history: Vec<HistoryEntry>,
    /// What was odd and how it is handled, said out loud.
    pub notes: Vec<String>,
    /// What listens on each color's port (container mode; empty in compose mode).
    pub holders: HashMap<Color, PortHolder>,
    /// The app an earlier, hand-made setup started on the live color's port.
    pub adopted: Option<Adopted>,
    /// With the nftables switch: what else uses service_port, as the users script printed it
    /// ([`crate::server::nft::USERS_SCRIPT`]; `None`: not read).
    pub service_port_users: Option<String>,
}

/// An app bluegreen did not start that serves on the live color's port (a migration from the
/// old scripts): it keeps serving until the new color is verified, then it is stopped, never
/// removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Adopted {
    pub color: Color,
    pub holder: PortHolder,
}

impl Observed {
    /// The color a deploy goes to: the other one than live; without a live color, one that is
    /// not running (so a running container is never replaced), blue when both are free.
    pub fn target(&self) -> Color {
        match self.live {
            Some(live) => live.other(),
            None if self.running(Color::Blue) => Color::Green,
            None => Color::Blue,
        }
    }

    pub fn running(&self, color: Color) -> bool {
        self.containers.get(&color).is_some_and(|c| c.running)
    }

    /// Running as that color: our container, or the adopted app on its port.
    pub fn serving(&self, color: Color) -> bool {
        self.running(color) || self.adopted.as_ref().is_some_and(|a| a.color == color)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: String,
    name: String,
    #[serde(default)]
    image: String,
    state: InspectState,
    #[serde(default)]
    restart_count: u64,
    config: InspectConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    status: String,
    running: bool,
    #[serde(default)]
    restarting: bool,
    #[serde(default)]
    exit_code: i64,
    #[serde(default)]
    pid: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    image: String,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
}

/// Parses `docker inspect` output into the colors it shows.
pub fn parse_inspect(
    json: &str,
    config: &Config,
    runtime: &Runtime,
) -> Result<HashMap<Color, ColorContainer>> {
    let start = json.find('[').unwrap_or(0);
    let items: Vec<Inspect> =
        serde_json::from_str(json[start..].trim()).context("reading docker inspect output")?;
    let mut found = HashMap::new();
    for item in items {
        let labels = item.config.labels.unwrap_or_default();
        let name = item.name.trim_start_matches('/').to_owned();
        let (color, ours) = match runtime {
            Runtime::Container(_) => {
                let Some(color) = Color::BOTH
                    .into_iter()
                    .find(|c| docker::container_name(config, *c) == name)
                else {
                    continue;
                };
                (
                    color,
                    labels.get(docker::LABEL_APP) == Some(&config.app_name),
                )
            }
            Runtime::Compose(compose) => {
                let service = labels
                    .get("com.docker.compose.service")
                    .cloned()
                    .unwrap_or_default();
                let Some(color) = Color::BOTH
                    .into_iter()
                    .find(|c| compose.service(*c) == service)
                else {
                    continue;
                };
                (color, true)
            }
            Runtime::Process(_) => continue,
        };
        let image_ref = labels
            .get(docker::LABEL_IMAGE)
            .cloned()
            .unwrap_or(item.config.image);
        found.insert(
            color,
            ColorContainer {
                id: item.id,
                name,
                running: item.state.running && !item.state.restarting,
                status: if item.state.restarting {
                    "restarting".into()
                } else {
                    item.state.status
                },
                restart_count: item.restart_count,
                exit_code: item.state.exit_code,
                image_ref,
                image_id: item.image,
                pid: if item.state.running {
                    item.state.pid
                } else {
                    0
                },
                sha: labels
                    .get(docker::LABEL_SHA)
                    .cloned()
                    .filter(|sha| sha != "unknown" && sha != "rollback"),
                ours,
            },
        );
    }
    Ok(found)
}

/// Process mode: the colors' processes as the status script reports them.
fn process_colors(output: &str) -> HashMap<Color, ColorContainer> {
    crate::server::process::parse_status(output)
        .into_iter()
        .map(|p| {
            let container = ColorContainer {
                id: p.pid.to_string(),
                name: if p.running {
                    format!("process {}", p.pid)
                } else {
                    "process".to_owned()
                },
                running: p.running,
                status: p.state,
                restart_count: p.restarts,
                exit_code: p.last_exit_code,
                image_ref: p
                    .release
                    .as_deref()
                    .map(|id| format!("{}{id}", crate::build::artifact::RELEASE_PREFIX))
                    .unwrap_or_default(),
                image_id: p.release.unwrap_or_default(),
                pid: if p.running { p.pid } else { 0 },
                sha: None,
                ours: true,
            };
            (p.color, container)
        })
        .collect()
}

/// The containers of both colors as they are now (one or two round trips).
pub async fn containers<H: Host>(ctx: &Ctx<'_, H>) -> Result<HashMap<Color, ColorContainer>> {
    if let Runtime::Process(_) = &ctx.runtime {
        let output = ctx
            .run_ok(&crate::server::process::status(&ctx.config.state_dir))
            .await?;
        return Ok(process_colors(&output.stdout));
    }
    let names: Vec<String> = match &ctx.runtime {
        Runtime::Container(_) => Color::BOTH
            .iter()
            .map(|c| docker::container_name(ctx.config, *c))
            .collect(),
        Runtime::Compose(compose) => {
            let ids = ctx.run_ok(&compose.container_ids()).await?;
            ids.stdout.split_whitespace().map(str::to_owned).collect()
        }
        Runtime::Process(_) => Vec::new(),
    };
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    // Exits non-zero when a name is missing; the JSON of the others is still printed.
    let output = ctx.run(&docker::inspect(&names)).await?;
    if output.stdout.trim().is_empty() {
        if output.stderr.contains("No such") || output.stderr.contains("no such") {
            return Ok(HashMap::new());
        }
        anyhow::bail!("inspecting containers failed: {}", output.tail(3));
    }
    parse_inspect(&output.stdout, ctx.config, &ctx.runtime)
}

/// What holds each color's port (not in compose mode: compose publishes its own ports).
async fn port_holders<H: Host>(ctx: &Ctx<'_, H>) -> Result<HashMap<Color, PortHolder>> {
    if matches!(ctx.runtime, Runtime::Compose(_)) {
        return Ok(HashMap::new());
    }
    let config = ctx.config;
    let output = ctx
        .run_ok(&ports::holders(
            &ports::nginx_address(config),
            &[config.blue_port, config.green_port],
        ))
        .await?;
    Ok(Color::BOTH
        .into_iter()
        .map(|color| (color, ports::parse(&output.stdout, config.port_of(color))))
        .collect())
}

/// With the nftables switch: what else uses service_port (read before anything changes).
async fn service_port_users<H: Host>(ctx: &Ctx<'_, H>) -> Result<Option<String>> {
    if !matches!(ctx.config.traffic_switch, TrafficSwitch::Nftables { .. }) {
        return Ok(None);
    }
    let Some(command) = super::switch::service_port_users_command(ctx.config) else {
        return Ok(None);
    };
    Ok(Some(ctx.run_ok(&command).await?.stdout))
}

/// What [`observe`] reads, as far as it is known in advance (compose mode inspects the ids it
/// finds), to run in one batch: the deploy lock's holder runs them once it holds the lock.
/// With `traffic_switch: auto`, also the probe and the nftables table it may choose.
pub fn readings<H: Host>(ctx: &Ctx<'_, H>) -> Vec<ServerCommand> {
    let config = ctx.config;
    let mut commands = vec![state::read(&config.state_dir, &config.nginx_switch_file)];
    commands.push(match &ctx.runtime {
        Runtime::Container(_) => {
            docker::inspect(&Color::BOTH.map(|color| docker::container_name(config, color)))
        }
        Runtime::Compose(compose) => compose.container_ids(),
        Runtime::Process(_) => crate::server::process::status(&config.state_dir),
    });
    if !matches!(ctx.runtime, Runtime::Compose(_)) {
        commands.push(ports::holders(
            &ports::nginx_address(config),
            &[config.blue_port, config.green_port],
        ));
    }
    let probe = super::traffic::probe_command(config);
    if probe.is_some() || matches!(config.traffic_switch, TrafficSwitch::Nftables { .. }) {
        commands.push(super::switch::read_table_command(config));
        commands.extend(super::switch::service_port_users_command(config));
    }
    commands.extend(probe);
    commands
}

pub async fn observe<H: Host>(ctx: &Ctx<'_, H>) -> Result<Observed> {
    let config = ctx.config;
    // Concurrent channels of the one connection: state files, containers, port holders and
    // the nftables table.
    let read_state = state::read(&config.state_dir, &config.nginx_switch_file);
    let (read, containers, holders, switch_table, users) = tokio::join!(
        ctx.run_ok(&read_state),
        containers(ctx),
        port_holders(ctx),
        super::switch::read_table(ctx),
        service_port_users(ctx)
    );
    let (read, containers, mut holders, switch_table, service_port_users) =
        (read?, containers?, holders?, switch_table?, users?);
    if let Runtime::Process(_) = &ctx.runtime {
        // A color's own running process holds its port: that is ours, not foreign.
        holders.retain(|color, _| !containers.get(color).is_some_and(|c| c.running));
    }
    let sections = state::parse_sections(&read.stdout);
    let state: StateFile = serde_json::from_str(sections.state.trim()).unwrap_or_default();
    let lock = serde_json::from_str(sections.lock.trim()).ok();
    let history = record::parse_history(&sections.history);
    let mut observed = Observed {
        switch_color: None,
        live: None,
        repoint: None,
        switch: super::switch::effective(
            config,
            sections.switch.as_deref(),
            switch_table.as_deref(),
        ),
        switch_file: sections.switch,
        switch_table,
        containers,
        state,
        lock,
        history,
        notes: Vec::new(),
        holders,
        adopted: None,
        service_port_users,
    };
    decide_live(&mut observed, config, &ctx.runtime)?;
    if let Some(question) = cross_check(&mut observed) {
        let routed = super::verify::routed_color(ctx, &observed.containers).await;
        settle(&mut observed, question, routed);
    }
    Ok(observed)
}

/// The switch file and the last verified state name different colors, and both run: which
/// one nginx serves must be asked (by evidence).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disagreement {
    pub file: Color,
    pub recorded: Color,
}

/// Compares the switch file with state.json (the last verified live color). A switch that was
/// interrupted (killed between writing the file and the reload, or before recording) leaves
/// them apart; the color that runs decides, and the switch is pointed back where needed.
pub fn cross_check(observed: &mut Observed) -> Option<Disagreement> {
    let (Some(file), Some(recorded)) = (observed.switch_color, observed.state.live_color) else {
        return None;
    };
    if file == recorded {
        return None;
    }
    match (observed.running(file), observed.running(recorded)) {
        (true, false) | (false, false) => {
            observed.notes.push(format!(
                "the switch file points at {file} but the last recorded live color is {recorded}, which is not running: {file} is taken as live (an earlier run switched but did not record it)"
            ));
            None
        }
        (false, true) => {
            observed.live = Some(recorded);
            observed.repoint = Some(recorded);
            observed.notes.push(format!(
                "the switch file points at {file}, which is not running, but the last verified live color is {recorded}: an earlier switch was interrupted; nginx is pointed back at {recorded} first"
            ));
            None
        }
        (true, true) => Some(Disagreement { file, recorded }),
    }
}

/// Decides a [`Disagreement`] with the routing evidence (`routed`: the color that received a
/// request through nginx, when it could be told).
pub fn settle(observed: &mut Observed, question: Disagreement, routed: Option<Color>) {
    let Disagreement { file, recorded } = question;
    let serving = routed.unwrap_or(recorded);
    observed.live = Some(serving);
    let how = match routed {
        Some(color) => format!("a request through nginx reached {color}"),
        None => format!(
            "which one nginx serves could not be told, so the last verified color {recorded} is taken"
        ),
    };
    if serving == file && routed.is_some() {
        observed.notes.push(format!(
            "the switch file points at {file} and {how}, but the last recorded live color is {recorded}: an earlier run switched without recording it; {file} is taken as live"
        ));
    } else {
        observed.repoint = Some(serving);
        observed.notes.push(format!(
            "the switch file points at {file} but the last verified live color is {recorded}, and both run; {how}; nginx is pointed at {serving} first and {} is drained before it is replaced",
            serving.other()
        ));
    }
}

/// What holds the switch, for messages.
pub fn switch_name(config: &Config) -> String {
    match config.traffic_switch {
        crate::settings::TrafficSwitch::Nftables {
            owns_switch_file: false,
            ..
        } => {
            format!(
                "nftables table {}",
                crate::server::nft::table_name(&config.app_name)
            )
        }
        crate::settings::TrafficSwitch::Nftables { .. } => format!(
            "nftables table {} behind the switch file {}",
            crate::server::nft::table_name(&config.app_name),
            config.nginx_switch_file
        ),
        _ => format!("switch file at {}", config.nginx_switch_file),
    }
}

/// `auto` chose nftables and nginx proxies to `service_port`, but the DNAT rule is gone
/// (nftables rules do not survive a reboot): nothing serves through nginx. The last verified
/// live color, when it runs, is pointed at first. `true`: handled.
fn lost_dnat_rule(observed: &mut Observed, config: &Config) -> bool {
    let crate::settings::TrafficSwitch::Nftables {
        service_port,
        owns_switch_file: true,
    } = config.traffic_switch
    else {
        return false;
    };
    if observed.switch_table.is_some() || !super::switch::points_at_service(observed, service_port)
    {
        return false;
    }
    let Some(live) = observed
        .state
        .live_color
        .filter(|color| observed.running(*color))
    else {
        return false;
    };
    observed.live = Some(live);
    observed.repoint = Some(live);
    observed.notes.push(format!(
        "nginx proxies to port {service_port}, but the nftables rule that sends that port to a \
         color is gone (nftables rules do not survive a reboot): nothing served through nginx; \
         {live}, the last verified live color, is pointed at first"
    ));
    true
}

/// The live color's port served by an app bluegreen did not start (a container under our
/// name without our label, or anything else listening there) is that color's old app.
fn adopt_what_serves(observed: &mut Observed, config: &Config, live: Color) {
    let port = config.port_of(live);
    let holder = match observed.containers.get(&live) {
        Some(container) if container.running && !container.ours => PortHolder::Container {
            name: container.name.clone(),
            image: container.image_ref.clone(),
            app: String::new(),
        },
        Some(container) if container.running => return,
        _ => match observed.holders.get(&live) {
            Some(holder @ (PortHolder::Container { .. } | PortHolder::Process { .. }))
                if !holder.started_by(&config.app_name) =>
            {
                holder.clone()
            }
            _ => return,
        },
    };
    observed.notes.push(format!(
        "{live}'s port {port} is served by {}, which bluegreen did not start (an earlier \
         setup): it is the old app; it keeps serving until {} is verified, then it is stopped, \
         never removed",
        holder.describe(),
        live.other()
    ));
    observed.adopted = Some(Adopted {
        color: live,
        holder,
    });
}

/// The live color is the one the switch file points at; drift is named, never silently fixed.
fn decide_live(observed: &mut Observed, config: &Config, runtime: &Runtime) -> Result<()> {
    if lost_dnat_rule(observed, config) {
        return Ok(());
    }
    let Some(content) = &observed.switch else {
        let file = &switch_name(config);
        let note = match Color::BOTH.map(|c| observed.running(c)) {
            [false, false] => format!("no {file} yet: this is a first deploy, it goes to blue"),
            [true, true] => {
                return Err(crate::failure::Failure::deploy(format!(
                    "there is no {file} but both colors are running, so which one serves \
                     cannot be told; nothing was changed; restore the switch file or stop the idle color"
                ))
                .into())
            }
            _ => format!(
                "there is no {file}, but {} is running: deploying to {} so the running color is not replaced",
                observed.target().other(),
                observed.target()
            ),
        };
        observed.notes.push(note);
        return Ok(());
    };
    let renderings = Color::BOTH.map(|color| {
        (
            color,
            nginx::render_switch(
                &config.nginx_switch_template,
                config.port_of(color),
                color,
                &runtime.service(color),
            ),
        )
    });
    let ports = Color::BOTH.map(|color| (color, config.port_of(color)));
    let Some(color) = nginx::color_of_switch(content, renderings, ports) else {
        // A file an earlier run pointed at service_port, when auto cannot use nftables now.
        let why = config
            .traffic_switch_choice
            .as_ref()
            .map(|choice| format!(" ({choice}; a switch file naming service_port was written by an earlier nftables switch)"))
            .unwrap_or_default();
        return Err(crate::failure::Failure::deploy(format!(
            "the {} points at neither color (blue port {}, green port {}): {}{why}; \
             nothing was changed; fix it (or nginx_switch_template), then deploy again",
            switch_name(config),
            config.blue_port,
            config.green_port,
            excerpt(content)
        ))
        .into());
    };
    observed.switch_color = Some(color);
    observed.live = Some(color);
    adopt_what_serves(observed, config, color);
    if !observed.serving(color) {
        observed.notes.push(format!(
            "the switch file points at {color}, but {} is not running: nginx has no healthy backend; \
             this deploy goes to {}",
            runtime.describe(config, color),
            color.other()
        ));
    }
    if observed.running(color.other()) {
        observed.notes.push(format!(
            "both colors are running; {} is idle and will be replaced",
            runtime.describe(config, color.other())
        ));
    }
    Ok(())
}

/// A short, printable excerpt of a server file for an error line: its first non-empty line
/// (at most 120 characters, control characters escaped), then how much more there is.
fn excerpt(content: &str) -> String {
    const MAX: usize = 120;
    let mut lines = content.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let more = lines.count();
    let mut shown = super::status::shown(first);
    if shown.chars().count() > MAX {
        shown = shown.chars().take(MAX).collect::<String>() + "…";
    }
    match more {
        0 => format!("`{shown}`"),
        1 => format!("`{shown}` and 1 more line ({} bytes)", content.len()),
        n => format!("`{shown}` and {n} more lines ({} bytes)", content.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    const INSPECT: &str = r#"[{"Id":"abc","Name":"/api-blue","RestartCount":0,
      "State":{"Status":"running","Running":true,"Restarting":false,"ExitCode":0},
      "Config":{"Image":"reg/api@sha256:1","Labels":{"bluegreen.app":"api","bluegreen.image":"reg/api:dev"}}},
      {"Id":"def","Name":"/api-green","RestartCount":2,
      "State":{"Status":"restarting","Running":true,"Restarting":true,"ExitCode":1},
      "Config":{"Image":"other","Labels":null}}]"#;

    #[test]
    fn parses_inspect_and_tells_ours_from_foreign() {
        let config = config(&[("image", "reg/api")]);
        let runtime = Runtime::new(&config, crate::server::compose::ComposeTool::V1);
        let found = parse_inspect(INSPECT, &config, &runtime).unwrap();
        let blue = &found[&Color::Blue];
        assert!(blue.running && blue.ours);
        assert_eq!(blue.image_ref, "reg/api:dev");
        let green = &found[&Color::Green];
        assert!(!green.running && !green.ours);
        assert_eq!(
            (green.status.as_str(), green.restart_count),
            ("restarting", 2)
        );
    }

    fn observed(switch: Option<&str>, running: &[Color]) -> Observed {
        let containers = running
            .iter()
            .map(|c| {
                (
                    *c,
                    ColorContainer {
                        id: "x".into(),
                        name: "n".into(),
                        running: true,
                        status: "running".into(),
                        restart_count: 0,
                        exit_code: 0,
                        image_ref: "i".into(),
                        image_id: "sha256:i".into(),
                        pid: 1,
                        sha: None,
                        ours: true,
                    },
                )
            })
            .collect();
        Observed {
            switch: switch.map(str::to_owned),
            switch_file: switch.map(str::to_owned),
            switch_table: None,
            switch_color: None,
            live: None,
            repoint: None,
            containers,
            state: StateFile::default(),
            lock: None,
            history: vec![],
            notes: vec![],
            holders: HashMap::new(),
            adopted: None,
            service_port_users: None,
        }
    }

    #[test]
    fn decides_the_live_color_and_names_drift() {
        let config = config(&[("image", "reg/api")]);
        let runtime = Runtime::new(&config, crate::server::compose::ComposeTool::V1);
        let mut first = observed(None, &[]);
        decide_live(&mut first, &config, &runtime).unwrap();
        assert_eq!((first.live, first.target()), (None, Color::Blue));
        assert!(first.notes[0].contains("first deploy"));

        let mut dead = observed(
            Some("set $service_url http://127.0.0.1:8082;\n"),
            &[Color::Blue],
        );
        decide_live(&mut dead, &config, &runtime).unwrap();
        assert_eq!(
            (dead.live, dead.target()),
            (Some(Color::Green), Color::Blue)
        );
        assert!(
            dead.notes[0].contains("points at green, but container api-green is not running"),
            "{:?}",
            dead.notes
        );

        let mut unknown = observed(Some("set $service_url http://127.0.0.1:9999;\n"), &[]);
        let error = decide_live(&mut unknown, &config, &runtime).unwrap_err();
        assert!(error.to_string().contains("points at neither color"));
    }
}
