//! The runbook both `deploy` and `rollback` follow once the new color's start commands are
//! known: start → healthy → switch → verify → drain → stop old. Each failure path sits beside
//! the step it guards and leaves the old color serving.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::health::{self, Unhealthy};
use super::observe::Observed;
use super::{switch, Ctx};
use crate::color::Color;
use crate::failure::Failure;
use crate::remote::{run_ok, Host};
use crate::server::{docker, nginx, ServerCommand};

pub struct Swap {
    pub target: Color,
    pub image_ref: String,
    pub start: Vec<ServerCommand>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Timings {
    pub lock_wait: f64,
    pub pull: f64,
    pub start: f64,
    pub health: f64,
    pub switch: f64,
    pub verify: f64,
    pub drain: f64,
    pub stop: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub action: String,
    pub old: Option<Color>,
    pub new: Color,
    pub image: String,
    pub health_attempts: u32,
    pub timings: Timings,
    pub drain: String,
    pub round_trips: usize,
    pub seconds: f64,
}

impl Summary {
    pub fn line(&self) -> String {
        let old = self.old.map_or("nothing".to_owned(), |c| c.to_string());
        let t = &self.timings;
        format!(
            "{} {}: {old} → {} in {:.1}s (lock {:.1}s, pull {:.1}s, start {:.1}s, health {:.2}s in {} probes, \
             switch {:.2}s, verify {:.2}s, drain {:.2}s, stop old {:.1}s); {} SSH round trips",
            self.action, self.image, self.new, self.seconds, t.lock_wait, t.pull, t.start, t.health,
            self.health_attempts, t.switch, t.verify, t.drain, t.stop, self.round_trips
        )
    }
}

/// What serves traffic now, for failure messages.
pub fn serving_now(observed: &Observed) -> String {
    match observed.live {
        Some(color) if observed.running(color) => format!("{color} still serves traffic"),
        Some(color) => {
            format!("nginx still points at {color} (which was not running before this deploy)")
        }
        None => "nothing served before this first deploy".to_owned(),
    }
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// Stops the new color after a failed attempt; best effort, the error already says what failed.
async fn stop_new<H: Host>(ctx: &Ctx<'_, H>, swap: &Swap) -> String {
    for command in ctx.runtime.stop(ctx.config, swap.target, &swap.image_ref) {
        if let Err(error) = run_ok(ctx.host, &command).await {
            return format!("stopping {} also failed: {error:#}", swap.target);
        }
    }
    format!("{} was stopped", swap.target)
}

/// Prints the new color's last log lines and returns them (for the step summary).
async fn print_logs<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Vec<String> {
    let name = match &ctx.runtime {
        super::Runtime::Container(_) => docker::container_name(ctx.config, color),
        super::Runtime::Compose(_) => match super::observe::containers(ctx)
            .await
            .ok()
            .and_then(|c| c.get(&color).cloned())
        {
            Some(container) => container.id,
            None => return Vec::new(),
        },
    };
    let Ok(output) = ctx.host.run(&docker::logs(&name)).await else {
        return Vec::new();
    };
    ctx.printer.info(&format!("last log lines of {color}:"));
    let lines: Vec<String> = output
        .stdout
        .lines()
        .chain(output.stderr.lines())
        .take(40)
        .map(str::to_owned)
        .collect();
    for line in &lines {
        ctx.printer.info(&format!("  | {line}"));
    }
    lines
}

pub async fn run<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    swap: &Swap,
    timings: &mut Timings,
) -> Result<(u32, String)> {
    let target = swap.target;
    let fail_with_logs = |what: String, after: String, logs: Vec<String>| -> anyhow::Error {
        let serving = serving_now(observed);
        Failure::deploy(format!("{what}; {serving}; {after}"))
            .serving(serving)
            .logs(logs)
            .into()
    };
    let fail = |what: String, after: String| fail_with_logs(what, after, Vec::new());

    ctx.printer.phase(&format!("start {target}"));
    let started = Instant::now();
    for command in &swap.start {
        ctx.printer.info(&command.render(ctx.host.sudo()));
        if let Err(error) = run_ok(ctx.host, command).await {
            let stopped = stop_new(ctx, swap).await;
            return Err(fail(
                format!("starting {target} failed: {error:#}"),
                format!("{stopped}; fix the problem and deploy again"),
            ));
        }
    }
    timings.start = secs(started);

    ctx.printer
        .phase(&format!("wait for {target} to be healthy"));
    let started = Instant::now();
    let healthy = match health::wait_healthy(ctx, target).await {
        Ok(healthy) => healthy,
        Err(unhealthy) => {
            let logs = match unhealthy {
                Unhealthy::Cancelled => Vec::new(),
                _ => print_logs(ctx, target).await,
            };
            let stopped = stop_new(ctx, swap).await;
            let what = format!(
                "health check of {target} (127.0.0.1:{}{}) failed after {:.1}s: {unhealthy}",
                ctx.config.port_of(target),
                ctx.config.health_path,
                started.elapsed().as_secs_f64()
            );
            return Err(fail_with_logs(
                what,
                format!("{stopped}; see its log lines above, fix the app and deploy again"),
                logs,
            ));
        }
    };
    timings.health = healthy.elapsed.as_secs_f64();
    ctx.printer.info(&format!(
        "{target} healthy after {:.2}s ({} probes)",
        timings.health, healthy.attempts
    ));

    if ctx.cancel.is_cancelled() {
        let stopped = stop_new(ctx, swap).await;
        return Err(fail("cancelled before the switch".into(), stopped));
    }

    ctx.printer.phase(&format!("switch nginx to {target}"));
    let started = Instant::now();
    if let Err(error) = switch::switch_to(ctx, target, observed).await {
        let stopped = stop_new(ctx, swap).await;
        return Err(fail(
            format!("switching nginx to {target} failed: {error:#}"),
            format!("{stopped}; fix the nginx settings and deploy again"),
        ));
    }
    timings.switch = secs(started);
    ctx.printer.info(&format!(
        "nginx reloaded, pointing at {target} (port {})",
        ctx.config.port_of(target)
    ));

    let started = Instant::now();
    match switch::verify(ctx, target, Duration::from_secs(10)).await {
        Ok(verified) => {
            let by = if verified.identified {
                format!("served by {target}")
            } else {
                "served".to_owned()
            };
            ctx.printer.info(&format!(
                "verified through nginx: {by} after {} attempts",
                verified.attempts
            ));
        }
        Err(error) => {
            let switched_back = match observed.live {
                Some(_) => match switch::restore(ctx, observed, true).await {
                    Ok(()) => "switched back".to_owned(),
                    Err(back) => format!("switching back failed too: {back:#}"),
                },
                None => "there was no previous color to switch back to".to_owned(),
            };
            let stopped = stop_new(ctx, swap).await;
            return Err(fail(
                format!("{error:#}; {switched_back}"),
                format!("{stopped}; check nginx and verify_url, then deploy again"),
            ));
        }
    }
    timings.verify = secs(started);

    let drained = drain_and_stop_old(ctx, observed, target, timings).await;
    Ok((healthy.attempts, drained))
}

/// After a verified switch the new color serves; the old one is drained and stopped.
/// Failures here are reported but do not undo the deploy.
async fn drain_and_stop_old<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    target: Color,
    timings: &mut Timings,
) -> String {
    let old = target.other();
    if !observed.running(old) {
        return "nothing to drain".into();
    }
    ctx.printer.phase(&format!("drain and stop {old}"));
    if ctx.cancel.is_cancelled() {
        ctx.printer.warn(&format!(
            "cancelled: {old} is left running (no longer receiving traffic)"
        ));
        return format!("{old} left running (cancelled)");
    }
    let started = Instant::now();
    let drain = nginx::drain(ctx.config.port_of(old), ctx.config.drain_timeout);
    let drained = match run_ok(ctx.host, &drain).await {
        Ok(output) if output.stdout.starts_with("drained") => {
            format!("{old} drained in {:.1}s", started.elapsed().as_secs_f64())
        }
        Ok(output) => format!(
            "{old} still had {} connections after drain_timeout",
            output.stdout.split_whitespace().nth(1).unwrap_or("?")
        ),
        Err(error) => format!(
            "could not watch {old}'s connections ({error:#}); stopped after the reload anyway"
        ),
    };
    ctx.printer.info(&drained);
    timings.drain = secs(started);
    let started = Instant::now();
    let old_image = observed
        .containers
        .get(&old)
        .map(|c| c.image_ref.clone())
        .unwrap_or_default();
    for command in ctx.runtime.stop(ctx.config, old, &old_image) {
        if let Err(error) = run_ok(ctx.host, &command).await {
            ctx.printer.warn(&format!(
                "{error:#}; {target} serves traffic, {old} may still be running"
            ));
        }
    }
    timings.stop = secs(started);
    drained
}
