//! `bluegreen deploy`: lock → observe → pull (resolve the digest) → swap → record → unlock.

use std::time::Instant;

use anyhow::Result;

use super::observe::{self, Observed};
use super::record::{self, HistoryEntry, StateFile};
use super::swap::{self, Summary, Swap, Timings};
use super::{lock, Ctx};
use crate::failure::Failure;
use crate::remote::{run_ok, Host};
use crate::server::{docker::RunSpec, state};

/// `repo:tag` → `repo`; digests and registry ports are kept apart correctly.
pub fn repository_of(image_ref: &str) -> &str {
    let without_digest = image_ref.split('@').next().unwrap_or(image_ref);
    match without_digest.rfind(':') {
        Some(at) if !without_digest[at..].contains('/') => &without_digest[..at],
        _ => without_digest,
    }
}

/// The reference to run: `image_ref` itself when it is a digest, else the pulled digest of its
/// repository, so what runs can never change under a moving tag.
pub fn pinned_reference(image_ref: &str, pull_output: &str) -> String {
    if image_ref.contains("@sha256:") {
        return image_ref.to_owned();
    }
    let digests: Vec<String> = pull_output
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Vec<String>>(line.trim()).ok())
        .unwrap_or_default();
    let repository = repository_of(image_ref);
    digests
        .iter()
        .find(|digest| repository_of(digest) == repository)
        .cloned()
        .unwrap_or_else(|| image_ref.to_owned())
}

/// `commit_is_built`: `sha` is the commit the image was built from (ship, the action), so the
/// older-commit check applies; a plain `deploy` only labels with the checkout's commit.
pub async fn deploy<H: Host>(
    ctx: &Ctx<'_, H>,
    image_ref: &str,
    sha: &str,
    commit_is_built: bool,
) -> Result<Summary> {
    under_lock(
        ctx,
        "deploy",
        image_ref,
        locked(ctx, image_ref, sha, commit_is_built),
    )
    .await
}

/// Takes the lock, runs `work`, records the outcome in the history (and the new state on
/// success), releases the lock on every path.
pub async fn under_lock<H: Host>(
    ctx: &Ctx<'_, H>,
    action: &str,
    image_label: &str,
    work: impl std::future::Future<Output = Result<(Summary, Observed)>>,
) -> Result<Summary> {
    let started = Instant::now();
    ctx.printer.phase("take the deploy lock");
    let lock = lock::acquire(ctx, &lock::holder(image_label)).await?;
    ctx.printer.info(&format!(
        "lock taken in {} after {:.1}s",
        ctx.config.state_dir,
        lock.waited.as_secs_f64()
    ));
    let outcome = work.await;
    let seconds = started.elapsed().as_secs_f64();
    let (new_state, entry) = match &outcome {
        Ok((summary, observed)) => (
            Some(next_state(summary, observed)),
            HistoryEntry {
                time: record::now(),
                action: action.into(),
                color: Some(summary.new),
                image: Some(summary.image.clone()),
                result: "success".into(),
                previous_color: summary.old,
                reason: None,
                seconds,
            },
        ),
        Err(error) => (
            None,
            HistoryEntry {
                time: record::now(),
                action: action.into(),
                color: None,
                image: Some(image_label.to_owned()),
                result: "failed".into(),
                previous_color: None,
                reason: Some(format!("{error:#}")),
                seconds,
            },
        ),
    };
    if let Err(error) = save(ctx, new_state.as_ref(), &entry).await {
        ctx.printer.warn(&format!(
            "recording the result in {} failed: {error:#}",
            ctx.config.state_dir
        ));
    }
    let lock_wait = lock.waited.as_secs_f64();
    lock.release();
    let (mut summary, _) = outcome?;
    summary.timings.lock_wait = lock_wait;
    summary.seconds = seconds;
    summary.round_trips = ctx.host.round_trips();
    Ok(summary)
}

pub fn next_state(summary: &Summary, observed: &Observed) -> StateFile {
    let old_image = summary.old.and_then(|old| {
        observed
            .containers
            .get(&old)
            .map(|c| c.image_ref.clone())
            .or_else(|| observed.state.live_image.clone())
    });
    StateFile {
        live_color: Some(summary.new),
        live_image: Some(summary.image.clone()),
        previous_color: summary.old,
        previous_image: old_image,
        updated: Some(record::now()),
    }
}

pub async fn save<H: Host>(
    ctx: &Ctx<'_, H>,
    state_file: Option<&StateFile>,
    entry: &HistoryEntry,
) -> Result<()> {
    let state_json = state_file
        .map(serde_json::to_string)
        .transpose()?
        .unwrap_or_default();
    let line = serde_json::to_string(entry)?;
    run_ok(
        ctx.host,
        &state::record(&ctx.config.state_dir, &state_json, &line),
    )
    .await?;
    Ok(())
}

/// Reads the state and says what was found; refuses when the idle name is taken by a stranger.
pub async fn observe_for_swap<H: Host>(ctx: &Ctx<'_, H>) -> Result<Observed> {
    ctx.printer.phase("read server state");
    let observed = observe::observe(ctx).await?;
    for note in &observed.notes {
        ctx.printer.notice(note);
    }
    let target = observed.target();
    if let Some(foreign) = observed.containers.get(&target).filter(|c| !c.ours) {
        return Err(Failure::deploy(format!(
            "a container named {} exists that bluegreen did not start (no {}={} label); nothing was changed; \
             {}; remove or rename it (docker rm -f {}) or choose another app_name",
            foreign.name,
            crate::server::docker::LABEL_APP,
            ctx.config.app_name,
            swap::serving_now(&observed),
            foreign.name
        ))
        .into());
    }
    let live = observed.live.map_or("none".to_owned(), |c| c.to_string());
    ctx.printer
        .info(&format!("live color: {live}; deploying to {target}"));
    Ok(observed)
}

async fn locked<H: Host>(
    ctx: &Ctx<'_, H>,
    image_ref: &str,
    sha: &str,
    commit_is_built: bool,
) -> Result<(Summary, Observed)> {
    let mut timings = Timings::default();
    let timings = &mut timings;
    let observed = observe_for_swap(ctx).await?;
    let target = observed.target();
    if commit_is_built {
        refuse_older_commit(ctx, &observed, sha).await?;
    }

    ctx.printer.phase(&format!("pull {image_ref}"));
    let started = Instant::now();
    let pull = ctx.runtime.pull(ctx.config, image_ref, target);
    ctx.printer.info(&pull.render(ctx.host.sudo()));
    let pulled = run_ok(ctx.host, &pull).await.map_err(|error| {
        Failure::deploy(format!(
            "pulling {image_ref} on the server failed: {error:#}; {}; nothing was changed; \
             check image, registry, docker_username and docker_token",
            swap::serving_now(&observed)
        ))
    })?;
    let run_ref = pinned_reference(image_ref, &pulled.stdout);
    timings.pull = started.elapsed().as_secs_f64();
    ctx.printer
        .info(&format!("pulled {run_ref} in {:.1}s", timings.pull));

    let spec = RunSpec {
        color: target,
        image_ref: &run_ref,
        sha,
    };
    let start = ctx
        .runtime
        .start_new(ctx.config, &spec, observed.containers.contains_key(&target));
    let swap = Swap {
        target,
        image_ref: run_ref.clone(),
        start,
    };
    let (health_attempts, drain) = swap::run(ctx, &observed, &swap, timings).await?;
    let summary = Summary {
        action: "deployed".into(),
        old: observed.live.filter(|live| observed.running(*live)),
        new: target,
        image: run_ref,
        health_attempts,
        timings: timings.clone(),
        drain,
        round_trips: 0,
        seconds: 0.0,
    };
    Ok((summary, observed))
}

/// With the GitHub API at hand: refuses to replace the live commit with an older one (a
/// re-run of an old workflow, an out-of-order merge). Going back on purpose is `rollback`.
async fn refuse_older_commit<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    sha: &str,
) -> Result<()> {
    let Some(github) = ctx.github else {
        return Ok(());
    };
    let Some(live) = observed
        .live
        .and_then(|c| observed.containers.get(&c))
        .and_then(|c| c.sha.clone())
    else {
        return Ok(());
    };
    if live == sha || sha == "unknown" {
        return Ok(());
    }
    match github.compare(&live, sha).await.as_deref() {
        Ok("behind") => Err(Failure::deploy(format!(
            "refusing to deploy {}: it is older than the live commit {}; {}; nothing was changed; \
             to go back on purpose run `bluegreen rollback` or deploy the older image with `bluegreen deploy --image-ref`",
            &sha[..sha.len().min(7)],
            &live[..live.len().min(7)],
            swap::serving_now(observed)
        ))
        .into()),
        Ok("diverged") => {
            ctx.printer.warn(&format!("{sha} and the live commit {live} have diverged; deploying anyway"));
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(error) => {
            ctx.printer.warn(&format!("{error:#}; the commit order was not checked"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_of_references() {
        assert_eq!(
            repository_of("127.0.0.1:5000/demo/app:dev"),
            "127.0.0.1:5000/demo/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/demo/app"),
            "127.0.0.1:5000/demo/app"
        );
        assert_eq!(repository_of("myorg/app@sha256:abc"), "myorg/app");
    }

    #[test]
    fn pins_the_pulled_digest() {
        let d = format!("sha256:{}", "b".repeat(64));
        let output = format!("127.0.0.1:5000/demo/app:dev\n[\"127.0.0.1:5000/other@sha256:0\",\"127.0.0.1:5000/demo/app@{d}\"]\n");
        assert_eq!(
            pinned_reference("127.0.0.1:5000/demo/app:dev", &output),
            format!("127.0.0.1:5000/demo/app@{d}")
        );
        assert_eq!(pinned_reference("local/app:dev", "[]"), "local/app:dev");
        let by_digest = format!("x/app@{d}");
        assert_eq!(pinned_reference(&by_digest, &output), by_digest);
    }
}
