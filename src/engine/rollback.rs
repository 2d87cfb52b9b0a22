//! `bluegreen rollback`: traffic back to the previous color — instant when its container was
//! kept (start it, health-check, switch, verify), recreated from its image otherwise.

use anyhow::Result;

use super::deploy::{observe_for_swap, under_lock};
use super::observe::Observed;
use super::swap::{self, Summary, Swap, Timings};
use super::Ctx;
use crate::failure::Failure;
use crate::remote::Host;
use crate::server::docker::RunSpec;

pub async fn rollback<H: Host>(ctx: &Ctx<'_, H>) -> Result<Summary> {
    under_lock(ctx, "rollback", "rollback", locked(ctx)).await
}

async fn locked<H: Host>(ctx: &Ctx<'_, H>) -> Result<(Summary, Observed)> {
    let observed = observe_for_swap(ctx).await?;
    let Some(live) = observed.live else {
        return Err(Failure::deploy(
            "nothing to roll back: no color is live yet (no switch file); deploy first",
        )
        .into());
    };
    let target = live.other();
    let kept = observed.containers.get(&target);
    let image = kept.map(|c| c.image_ref.clone()).or_else(|| {
        (observed.state.previous_color == Some(target))
            .then(|| observed.state.previous_image.clone())
            .flatten()
    });
    let Some(image) = image else {
        return Err(Failure::deploy(format!(
            "nothing to roll back to: {target} has no kept container and no recorded image; {live} still serves traffic"
        ))
        .into());
    };
    let start = match kept {
        Some(container) if container.running => Vec::new(),
        Some(_) => vec![ctx.runtime.start_kept(ctx.config, target, &image)],
        None => ctx.runtime.start_new(
            ctx.config,
            &RunSpec {
                color: target,
                image_ref: &image,
                sha: "rollback",
            },
            false,
        ),
    };
    ctx.printer
        .info(&format!("rolling back from {live} to {target} ({image})"));
    let mut timings = Timings::default();
    let swap = Swap {
        target,
        image_ref: image.clone(),
        start,
    };
    let (health_attempts, drain) = swap::run(ctx, &observed, &swap, &mut timings).await?;
    let summary = Summary {
        action: "rolled back to".into(),
        old: Some(live).filter(|c| observed.running(*c)),
        new: target,
        image,
        health_attempts,
        timings,
        drain,
        round_trips: 0,
        seconds: 0.0,
    };
    Ok((summary, observed))
}
