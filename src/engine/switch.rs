//! Pointing traffic at a color: write the switch file atomically, `nginx -t`, graceful reload
//! (or replace one nftables DNAT rule); restore the previous switch whenever a step fails.
//! Then verify through nginx.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::health;
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
    if reload && previous.is_some() {
        run_ok(ctx.host, &nginx::test_config(&config.nginx_test_command)).await?;
        run_ok(ctx.host, &nginx::reload(&config.nginx_reload_command)).await?;
    }
    Ok(())
}

/// Switches to `color`. On failure the previous switch is back and traffic flows as before;
/// the error says which step failed.
pub async fn switch_to(ctx: &Ctx<'_, impl Host>, color: Color, observed: &Observed) -> Result<()> {
    let mut steps = commands(ctx, color).into_iter();
    // The first step changes the switch (an nftables load is atomic: it fails whole).
    run_ok(ctx.host, &steps.next().expect("a switch has a first step")).await?;
    if let Some(test) = steps.next() {
        if let Err(error) = run_ok(ctx.host, &test).await {
            // The failed test means nginx never loaded the new file: restore without reload.
            let restored = restore(ctx, observed, false).await;
            return Err(anyhow!("{error:#}; {}", restore_note(restored)));
        }
    }
    if let Some(reload) = steps.next() {
        if let Err(error) = run_ok(ctx.host, &reload).await {
            let restored = restore(ctx, observed, true).await;
            return Err(anyhow!("{error:#}; {}", restore_note(restored)));
        }
    }
    Ok(())
}

fn restore_note(restored: Result<()>) -> String {
    match restored {
        Ok(()) => "the previous switch file was restored".into(),
        Err(error) => format!("restoring the previous switch file also failed: {error:#}"),
    }
}

#[derive(Debug)]
pub struct Verified {
    pub attempts: u32,
    pub identified: bool,
}

/// Which color a response names: header `X-Bluegreen-Color`, or `"color":"…"` in its body.
pub fn color_in_response(header: Option<&str>, body: &str) -> Option<Color> {
    if let Some(color) = header.and_then(Color::parse) {
        return Some(color);
    }
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    Color::BOTH
        .into_iter()
        .find(|c| compact.contains(&format!("\"color\":\"{c}\"")))
}

/// Fetches `verify_url` on the server until it is served (2xx, and by `color` when the
/// response names one), for up to `deadline`.
pub async fn verify(
    ctx: &Ctx<'_, impl Host>,
    color: Color,
    deadline: Duration,
) -> Result<Verified> {
    let url = &ctx.config.verify_url;
    let local = ctx.host.forward(&url.host, url.port).await?;
    let client = health::client(Duration::from_secs(5));
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = async {
            let response = client
                .get(format!("http://{local}{}", url.path))
                .header("Host", &url.host)
                .send()
                .await
                .map_err(|e| health::describe_request_error(&e))?;
            let status = response.status();
            let header = response
                .headers()
                .get("x-bluegreen-color")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            match color_in_response(header.as_deref(), &body) {
                Some(served) if served != color => Err(format!("served by {served}, not {color}")),
                Some(_) => Ok(true),
                None => Ok(false),
            }
        }
        .await;
        match outcome {
            Ok(identified) => {
                return Ok(Verified {
                    attempts,
                    identified,
                })
            }
            Err(reason) if started.elapsed() >= deadline => {
                return Err(anyhow!(
                    "verification through nginx ({}) failed after {attempts} attempts: {reason}",
                    url.render()
                ))
            }
            Err(reason) => ctx.printer.progress(&format!(
                "verify {}: {reason} (attempt {attempts})",
                url.render()
            )),
        }
        ctx.cancel.sleep(Duration::from_millis(100)).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_color_in_a_response() {
        assert_eq!(color_in_response(Some("green"), ""), Some(Color::Green));
        assert_eq!(
            color_in_response(None, r#"{"status":"UP", "color": "blue"}"#),
            Some(Color::Blue)
        );
        assert_eq!(color_in_response(None, r#"{"status":"UP"}"#), None);
    }
}
