//! Pointing traffic at a color: write the switch file atomically, `nginx -t`, graceful reload
//! (or replace one nftables DNAT rule); restore the previous switch whenever a step fails.
//! Verification lives in [`super::verify`].

use anyhow::Result;

use super::observe::Observed;
use super::Ctx;
use crate::color::Color;
use crate::remote::{run_ok, Host};
use crate::server::{nft, nginx, ServerCommand};
use crate::settings::{Config, TrafficSwitch};

pub fn render(ctx: &Ctx<'_, impl Host>, color: Color) -> String {
    let config = ctx.config;
    nginx::render_switch(
        &config.nginx_switch_template,
        config.port_of(color),
        color,
        &ctx.runtime.service(color),
    )
}

/// What a switch to `color` changes, in a few words: the file's new line, or the DNAT rule.
pub fn describe(ctx: &Ctx<'_, impl Host>, color: Color) -> String {
    match ctx.config.traffic_switch {
        TrafficSwitch::Nftables { service_port, .. } => format!(
            "port {service_port} → 127.0.0.1:{} (nftables DNAT, no reload)",
            ctx.config.port_of(color)
        ),
        _ => render(ctx, color).trim().to_owned(),
    }
}

/// The commands of a switch to `color`, in order: write, test, reload — or, with the
/// nftables switch, the one atomic ruleset replacement (plus, when `auto` chose nftables and
/// nginx does not proxy to `service_port` yet, the one switch file change that points it there).
pub fn commands(ctx: &Ctx<'_, impl Host>, observed: &Observed, color: Color) -> Vec<ServerCommand> {
    let config = ctx.config;
    match config.traffic_switch {
        TrafficSwitch::Nftables {
            service_port,
            owns_switch_file,
        } => {
            let mut commands = vec![nft::apply(
                &nft::ruleset(
                    &nft::table_name(&config.app_name),
                    service_port,
                    config.port_of(color),
                ),
                &format!("point port {service_port} at {color}"),
            )];
            if owns_switch_file && !nginx_follows_service(observed, service_port) {
                commands.extend(nginx_commands(
                    ctx,
                    &render_port(ctx, service_port, color),
                    &format!(
                        "point nginx at port {service_port} (once; later switches need no reload)"
                    ),
                ));
            }
            commands
        }
        TrafficSwitch::Nginx | TrafficSwitch::Auto { .. } => {
            nginx_commands(ctx, &render(ctx, color), &format!("point nginx at {color}"))
        }
    }
}

fn nginx_commands(ctx: &Ctx<'_, impl Host>, content: &str, purpose: &str) -> Vec<ServerCommand> {
    let config = ctx.config;
    vec![
        nginx::write_switch_file(&config.nginx_switch_file, content, purpose),
        nginx::test_config(&config.nginx_test_command),
        nginx::reload(&config.nginx_reload_command),
    ]
}

fn render_port(ctx: &Ctx<'_, impl Host>, port: u16, color: Color) -> String {
    let config = ctx.config;
    nginx::render_switch(
        &config.nginx_switch_template,
        port,
        color,
        &ctx.runtime.service(color),
    )
}

/// Whether nginx already proxies to `service_port`: the switch file points there and the last
/// verified switch went through it (a run killed between writing the file and the reload
/// leaves a file nginx never loaded: then the next switch writes and reloads again).
fn nginx_follows_service(observed: &Observed, service_port: u16) -> bool {
    points_at_service(observed, service_port)
        && observed.state.live_color.is_some()
        && observed.state.live_color == observed.switch_color
}

/// Whether the switch file already sends nginx to `service_port` (`auto` pointed it there).
pub fn points_at_service(observed: &Observed, service_port: u16) -> bool {
    observed
        .switch_file
        .as_deref()
        .is_some_and(|content| nginx::mentions_port(content, service_port))
}

/// Reads the nftables table of the switch (`None`: absent, or not the nftables switch).
pub async fn read_table(ctx: &Ctx<'_, impl Host>) -> Result<Option<String>> {
    if !matches!(ctx.config.traffic_switch, TrafficSwitch::Nftables { .. }) {
        return Ok(None);
    }
    let output = ctx.run(&read_table_command(ctx.config)).await?;
    Ok(output.success().then_some(output.stdout))
}

/// The service_port of a switch that uses one (nftables, or `auto` that may choose it).
pub fn service_port(config: &Config) -> Option<u16> {
    match config.traffic_switch {
        TrafficSwitch::Nftables { service_port, .. } | TrafficSwitch::Auto { service_port } => {
            Some(service_port)
        }
        TrafficSwitch::Nginx => None,
    }
}

/// Who else uses service_port on the server (another app's DNAT table, a listener).
pub fn service_port_users_command(config: &Config) -> Option<ServerCommand> {
    Some(nft::service_port_users(
        &nft::table_name(&config.app_name),
        service_port(config)?,
        [config.blue_port, config.green_port],
    ))
}

pub fn read_table_command(config: &Config) -> ServerCommand {
    nft::list(&nft::table_name(&config.app_name))
}

/// What nginx's traffic follows: the switch file, or the nftables table. When `auto` chose
/// nftables but the switch file still points at a color's port (an earlier nginx switch), the
/// file is what nginx follows.
pub fn effective(config: &Config, file: Option<&str>, table: Option<&str>) -> Option<String> {
    match config.traffic_switch {
        TrafficSwitch::Nftables {
            service_port,
            owns_switch_file,
        } => match file {
            Some(file) if owns_switch_file && !nginx::mentions_port(file, service_port) => {
                Some(file.to_owned())
            }
            _ => table.map(str::to_owned),
        },
        TrafficSwitch::Nginx | TrafficSwitch::Auto { .. } => file.map(str::to_owned),
    }
}

/// Puts the observed switch back: the previous switch file content (or none) and a reload,
/// or the previous color's DNAT rule (or no table) — and, when this run pointed the switch
/// file at `service_port` for the first time, that file too.
pub async fn restore(ctx: &Ctx<'_, impl Host>, observed: &Observed, reload: bool) -> Result<()> {
    let config = ctx.config;
    if let TrafficSwitch::Nftables {
        service_port,
        owns_switch_file,
    } = config.traffic_switch
    {
        let table_color = observed
            .switch_table
            .as_deref()
            .and_then(nft::target_port)
            .and_then(|port| config.color_of_port(port));
        let command = match table_color {
            Some(color) => commands(ctx, observed, color).remove(0),
            None => nft::delete(&nft::table_name(&config.app_name)),
        };
        run_ok(ctx.host, &command).await?;
        if !owns_switch_file || points_at_service(observed, service_port) {
            return Ok(());
        }
    }
    let previous = observed.switch_file.as_deref();
    let command = match previous {
        Some(content) => nginx::write_switch_file(
            &config.nginx_switch_file,
            content,
            "restore the previous switch file",
        ),
        None => nginx::remove_switch_file(&config.nginx_switch_file),
    };
    // No `nginx -t` first: this content is what nginx ran with before, and a reload of a
    // configuration nginx rejects keeps the running one anyway. One round trip for both:
    // users may be getting the new color's errors until the reload.
    let mut commands = vec![command];
    if reload && previous.is_some() {
        commands.push(nginx::reload(&config.nginx_reload_command));
    }
    in_one_round_trip(ctx, &commands).await
}

/// Runs `commands` in order in one round trip; the first that fails is the error.
async fn in_one_round_trip(ctx: &Ctx<'_, impl Host>, commands: &[ServerCommand]) -> Result<()> {
    let ran = ctx.host.run_batch(commands).await?;
    let count = ran.len();
    for (command, ran) in commands.iter().zip(ran) {
        crate::remote::succeeded(command, ran.output, ctx.host.sudo())?;
    }
    match commands.get(count) {
        Some(command) => anyhow::bail!("{} did not run", command.purpose),
        None => Ok(()),
    }
}

/// Runs a switch's commands in order (or takes their results from the batch that ran them);
/// the runner switches back when one fails. Returns how long they took on the server.
pub async fn apply(ctx: &Ctx<'_, impl Host>, commands: &[ServerCommand]) -> Result<f64> {
    let mut took = 0.0;
    for command in commands {
        ctx.printer.info(&command.render(ctx.host.sudo()));
        took += ctx
            .run_ok_timed(command)
            .await?
            .took
            .unwrap_or_default()
            .as_secs_f64();
    }
    Ok(took)
}

/// Why the color that served before this run cannot take traffic back, if it cannot: read
/// again (it may have died since the run observed it) and probed on its health path. `None`:
/// it runs and answers; switching back to it is safe.
pub async fn old_color_gone(
    ctx: &Ctx<'_, impl Host>,
    observed: &Observed,
    old: Color,
) -> Option<String> {
    let adopted = observed.adopted.as_ref().is_some_and(|a| a.color == old);
    // Both at once: users may be getting the new color's errors meanwhile.
    let (now, answers) = tokio::join!(
        async {
            match adopted {
                true => None,
                false => Some(super::observe::containers(ctx).await),
            }
        },
        super::health::answers(ctx, old)
    );
    match now {
        Some(Ok(now)) if !now.get(&old).is_some_and(|c| c.running) => {
            return Some(format!(
                "{} is not running any more",
                ctx.runtime.describe(ctx.config, old)
            ))
        }
        Some(Err(error)) => return Some(format!("{old} could not be read: {error:#}")),
        _ => {}
    }
    answers.err().map(|reason| {
        format!(
            "{old} does not answer 127.0.0.1:{}{} ({reason})",
            ctx.config.port_of(old),
            ctx.config.health_path
        )
    })
}

/// Points traffic back where it was before this run (`repointed`: at the live color this run
/// pointed it at first). Says what it did.
pub async fn back(
    ctx: &Ctx<'_, impl Host>,
    observed: &Observed,
    repointed: bool,
) -> Result<String> {
    match (repointed, observed.live) {
        (true, Some(live)) => {
            apply(ctx, &commands(ctx, observed, live)).await?;
            Ok(format!("switched back to {live}"))
        }
        _ => {
            restore(ctx, observed, true).await?;
            Ok(match observed.switch_color.or(observed.live) {
                Some(color) => format!("switched back to {color}"),
                None => "the new switch was removed".to_owned(),
            })
        }
    }
}
