//! `bluegreen plan`: every server command a deploy would run now, in order; changes nothing.

use anyhow::Result;

use super::observe::Observed;
use super::{switch, Ctx};
use crate::remote::Host;
use crate::server::docker::RunSpec;
use crate::server::{nginx, state, ServerCommand};

/// One line per step, commands rendered exactly as they would run.
pub fn deploy_plan<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    image_ref: &str,
    sha: &str,
) -> Vec<String> {
    let config = ctx.config;
    let sudo = ctx.host.sudo();
    let target = observed.target();
    let mut lines = vec![format!(
        "# live color: {}; the deploy goes to {target}",
        observed.live.map_or("none".into(), |c| c.to_string())
    )];
    lines.extend(observed.notes.iter().map(|note| format!("# {note}")));
    let step = |lines: &mut Vec<String>, comment: String, commands: Vec<ServerCommand>| {
        lines.push(format!("# {comment}"));
        lines.extend(commands.iter().map(|c| c.render(sudo)));
    };
    step(
        &mut lines,
        "take the deploy lock (held until the end)".into(),
        vec![state::lock(
            &config.state_dir,
            "<holder>",
            config.lock_timeout.as_secs(),
        )],
    );
    step(
        &mut lines,
        "read server state".into(),
        vec![state::read(&config.state_dir, &config.nginx_switch_file)],
    );
    step(
        &mut lines,
        "pull (the token, if any, goes on stdin); the digest is pinned".into(),
        vec![ctx.runtime.pull(config, image_ref, target)],
    );
    let spec = RunSpec {
        color: target,
        image_ref: "<pulled digest>",
        sha,
    };
    step(
        &mut lines,
        format!("start {target}"),
        ctx.runtime
            .start_new(config, &spec, observed.containers.contains_key(&target)),
    );
    let port = config.port_of(target);
    lines.push(format!(
        "# wait for health: GET http://127.0.0.1:{port}{} through an SSH forward, every {:?}, up to {:?}",
        config.health_path, config.health_interval, config.health_timeout
    ));
    lines.push(format!(
        "# switch file content: {}",
        switch::render(ctx, target).trim()
    ));
    step(
        &mut lines,
        format!("switch nginx to {target} (restored on failure)"),
        switch::commands(ctx, target),
    );
    lines.push(format!(
        "# verify: GET {} through an SSH forward, expecting {target}",
        config.verify_url.render()
    ));
    let old = target.other();
    if observed.running(old) {
        let old_image = observed
            .containers
            .get(&old)
            .map(|c| c.image_ref.clone())
            .unwrap_or_default();
        let mut commands = vec![nginx::drain(config.port_of(old), config.drain_timeout)];
        commands.extend(ctx.runtime.stop(config, old, &old_image));
        step(&mut lines, format!("drain and stop {old}"), commands);
    }
    step(
        &mut lines,
        "record the result".into(),
        vec![state::record(
            &config.state_dir,
            "<state>",
            "<history entry>",
        )],
    );
    lines
}

pub async fn plan<H: Host>(ctx: &Ctx<'_, H>, image_ref: &str, sha: &str) -> Result<Vec<String>> {
    let observed = super::observe::observe(ctx).await?;
    Ok(deploy_plan(ctx, &observed, image_ref, sha))
}
