//! Pointing traffic at a color: write the switch file atomically, `nginx -t`, graceful reload
//! (or replace one nftables DNAT rule); restore the previous switch whenever a step fails.
//! Verification lives in [`super::verify`].

use anyhow::Result;

use super::observe::Observed;
use super::Ctx;
use crate::color::Color;
use crate::remote::{run_ok, Host};
use crate::server::{nft, nginx, ServerCommand};
use crate::settings::TrafficSwitch;

pub fn render(ctx: &Ctx<'_, impl Host>, color: Color) -> String {
    let config = ctx.config;
    nginx::render_switch(
        &config.nginx_switch_template,
        config.port_of(color),
        color,
        &ctx.runtime.service(color),
    )
}

/// The commands of a switch to `color`, in order: write, test, reload — or, with the
/// nftables switch, the one atomic ruleset replacement.
pub fn commands(ctx: &Ctx<'_, impl Host>, color: Color) -> Vec<ServerCommand> {
    let config = ctx.config;
    match config.traffic_switch {
        TrafficSwitch::Nginx => vec![
            nginx::write_switch_file(
                &config.nginx_switch_file,
                &render(ctx, color),
                &format!("point nginx at {color}"),
            ),
            nginx::test_config(&config.nginx_test_command),
            nginx::reload(&config.nginx_reload_command),
        ],
        TrafficSwitch::Nftables { service_port } => vec![nft::apply(
            &nft::ruleset(
                &nft::table_name(&config.app_name),
                service_port,
                config.port_of(color),
            ),
            &format!("point port {service_port} at {color}"),
        )],
    }
}

/// Reads the switch as it is now: the switch file, or the nftables table (None: absent).
pub async fn read(ctx: &Ctx<'_, impl Host>, switch_file: Option<String>) -> Result<Option<String>> {
    match ctx.config.traffic_switch {
        TrafficSwitch::Nginx => Ok(switch_file),
        TrafficSwitch::Nftables { .. } => {
            let output = ctx
                .host
                .run(&nft::list(&nft::table_name(&ctx.config.app_name)))
                .await?;
            Ok(output.success().then_some(output.stdout))
        }
    }
}

/// Puts the observed switch back: the previous switch file content (or none) and a reload,
/// or the previous color's DNAT rule (or no table).
pub async fn restore(ctx: &Ctx<'_, impl Host>, observed: &Observed, reload: bool) -> Result<()> {
    let config = ctx.config;
    if let TrafficSwitch::Nftables { .. } = config.traffic_switch {
        let command = match observed.switch_color {
            Some(color) => commands(ctx, color).remove(0),
            None => nft::delete(&nft::table_name(&config.app_name)),
        };
        run_ok(ctx.host, &command).await?;
        return Ok(());
    }
    let previous = observed.switch.as_deref();
    let command = match previous {
        Some(content) => nginx::write_switch_file(
            &config.nginx_switch_file,
            content,
            "restore the previous switch file",
        ),
        None => nginx::remove_switch_file(&config.nginx_switch_file),
    };
    run_ok(ctx.host, &command).await?;
    // No `nginx -t` first: this content is what nginx ran with before, and a reload of a
    // configuration nginx rejects keeps the running one anyway.
    if reload && previous.is_some() {
        run_ok(ctx.host, &nginx::reload(&config.nginx_reload_command)).await?;
    }
    Ok(())
}

/// Runs a switch's commands in order; the runner switches back when one fails.
pub async fn apply(ctx: &Ctx<'_, impl Host>, commands: &[ServerCommand]) -> Result<()> {
    for command in commands {
        ctx.printer.info(&command.render(ctx.host.sudo()));
        run_ok(ctx.host, command).await?;
    }
    Ok(())
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
            apply(ctx, &commands(ctx, live)).await?;
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
