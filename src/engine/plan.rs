//! `bluegreen plan`: the runbook a deploy would execute now, rendered step by step with every
//! server command exactly as it would run; changes nothing. A refusal is predicted the same
//! way `deploy` would make it.

use anyhow::Result;

use super::observe::Observed;
use super::{runbook, Ctx};
use crate::remote::Host;
use crate::server::state;

/// The plan's lines; `Err`: the refusal `deploy` would make (the lines so far are printed).
pub fn deploy_plan<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    image_ref: &str,
    sha: &str,
) -> (Vec<String>, Result<()>) {
    let config = ctx.config;
    let mut lines = vec![format!(
        "# live color: {}; the deploy goes to {}",
        observed.live.map_or("none".into(), |c| c.to_string()),
        observed.target()
    )];
    lines.extend(
        config
            .traffic_switch_choice
            .iter()
            .map(|c| format!("# {c}")),
    );
    lines.extend(observed.notes.iter().map(|note| format!("# {note}")));
    lines.push("# take the deploy lock (held until the end)".into());
    lines.push(
        state::lock(&config.state_dir, "<holder>", config.lock_timeout.as_secs())
            .render(ctx.host.sudo()),
    );
    lines.push(
        "# read server state: the lock's holder runs these once it holds the lock, in the same round trip"
            .into(),
    );
    lines.extend(
        super::observe::readings(ctx)
            .iter()
            .map(|command| command.render(ctx.host.sudo())),
    );
    match runbook::deploy(ctx, observed, image_ref, sha) {
        Ok(runbook) => {
            lines.extend(runbook::render(ctx, observed, &runbook));
            lines.push(
                "# append the history entry (sent on the lock's channel; the holder writes it), release the lock"
                    .into(),
            );
            (lines, Ok(()))
        }
        Err(refusal) => {
            lines.push(format!("# deploy refuses: {refusal}"));
            (lines, Err(refusal.into()))
        }
    }
}

pub async fn plan<H: Host>(
    ctx: &Ctx<'_, H>,
    image_ref: &str,
    sha: &str,
) -> (Vec<String>, Result<()>) {
    match super::observe::observe(ctx).await {
        Ok(observed) => deploy_plan(ctx, &observed, image_ref, sha),
        Err(error) => (Vec::new(), Err(error)),
    }
}
