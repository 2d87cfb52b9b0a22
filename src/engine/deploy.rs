//! `bluegreen deploy`: lock → observe → pull (resolve the digest) → swap → record → unlock.

use std::time::Instant;

use anyhow::Result;

use super::observe::{self, Observed};
use super::record::{self, HistoryEntry};
use super::swap::{self, Request, Summary};
use super::{lock, runbook, Ctx};
use crate::failure::Failure;
use crate::remote::Host;

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
    force: bool,
) -> Result<Summary> {
    let request = Request {
        action: "deploy",
        force,
    };
    under_lock(ctx, &request, image_ref, async |ctx: &Ctx<'_, H>| {
        let observed = observe_for_swap(ctx).await?;
        if commit_is_built {
            refuse_older_commit(ctx, &observed, sha).await?;
        }
        let runbook = runbook::deploy(ctx, &observed, image_ref, sha)?;
        swap::run(ctx, &observed, &runbook, &request).await
    })
    .await
}

/// Takes the lock — its holder reads the server's state in the same round trip, and with
/// `traffic_switch: auto` asks which switch the server supports — runs `work` with those
/// readings at hand (and the switch chosen), appends the one history entry saying what
/// happened through the lock's channel (the new state.json is written by the runbook itself,
/// before the old color stops), and releases the lock on every path.
pub async fn under_lock<H: Host>(
    ctx: &Ctx<'_, H>,
    request: &Request<'_>,
    image_label: &str,
    work: impl AsyncFnOnce(&Ctx<'_, H>) -> Result<Summary>,
) -> Result<Summary> {
    let started = Instant::now();
    ctx.printer
        .phase("take the deploy lock and read the server's state");
    let readings = observe::readings(ctx);
    let mut lock = lock::acquire(ctx, &lock::holder(image_label), &readings)
        .await
        .map_err(nothing_changed)?;
    ctx.printer.info(&format!(
        "lock taken in {} after {:.1}s",
        ctx.config.state_dir,
        lock.waited.as_secs_f64()
    ));
    let prefetched = super::Prefetched::default();
    for (command, ran) in readings.into_iter().zip(std::mem::take(&mut lock.batch)) {
        prefetched.put(command, ran);
    }
    let probe = match super::traffic::probe_command(ctx.config) {
        Some(probe) => match prefetched.take(&probe) {
            Some(ran) => Some(ran.output),
            // The lock's batch could not run: asked on its own.
            None => ctx.run(&probe).await.ok(),
        },
        None => None,
    };
    let choice = super::traffic::choose(ctx.config, probe.as_ref());
    let resolved = super::traffic::resolved(ctx.config, choice.as_ref(), ctx.printer);
    let config = resolved.as_ref().unwrap_or(ctx.config);
    let locked = Ctx {
        config,
        host: ctx.host,
        printer: ctx.printer,
        runtime: ctx.runtime.rebind(config),
        cancel: ctx.cancel.clone(),
        github: ctx.github,
        prefetched,
    };
    let outcome = work(&locked).await;
    let ctx = &locked;
    let seconds = started.elapsed().as_secs_f64();
    let entry = match &outcome {
        Ok(summary) if summary.unchanged => Some(HistoryEntry {
            time: record::now(),
            action: request.action.into(),
            color: Some(summary.new),
            image: Some(summary.image.clone()),
            result: "unchanged".into(),
            previous_color: None,
            reason: Some("already live".into()),
            seconds,
            impact: None,
            sha: summary.sha.clone(),
        }),
        Ok(summary) => Some(HistoryEntry {
            time: record::now(),
            action: request.action.into(),
            color: Some(summary.new),
            image: Some(summary.image.clone()),
            result: "success".into(),
            previous_color: summary.old,
            reason: summary
                .proof
                .starts_with("unverified")
                .then(|| summary.proof.clone()),
            seconds,
            impact: summary.impact.clone(),
            sha: summary.sha.clone(),
        }),
        Err(error) => Some(HistoryEntry {
            time: record::now(),
            action: request.action.into(),
            color: None,
            image: Some(image_label.to_owned()),
            result: if error.downcast_ref::<super::cancel::Cancelled>().is_some()
                || ctx.cancel.is_cancelled()
            {
                "cancelled".into()
            } else {
                "failed".into()
            },
            previous_color: None,
            reason: Some(format!("{error:#}")),
            seconds,
            impact: error
                .downcast_ref::<Failure>()
                .and_then(|failure| failure.impact.as_deref().cloned()),
            sha: None,
        }),
    };
    if let Some(entry) = entry {
        // After a signal the runner allows seconds: the entry is written if the server answers.
        let budget = if ctx.cancel.is_cancelled() {
            std::time::Duration::from_millis(1500)
        } else {
            ctx.config.command_timeout + std::time::Duration::from_secs(10)
        };
        let line = serde_json::to_string(&entry)?;
        let saved = tokio::time::timeout(budget, lock.record(&line))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the server did not answer in time")));
        if let Err(error) = saved {
            ctx.printer.warn(&format!(
                "recording the result in {} failed: {error:#}",
                ctx.config.state_dir
            ));
        }
    }
    let lock_wait = lock.waited.as_secs_f64();
    lock.release();
    let mut summary = outcome?;
    summary.timings.lock_wait = lock_wait;
    summary.seconds = seconds;
    summary.round_trips = ctx.host.round_trips();
    Ok(summary)
}

/// An error before anything was changed: typed failures (with their exit code and wording)
/// pass, anything else says that nothing was touched.
fn nothing_changed(error: anyhow::Error) -> anyhow::Error {
    if error.downcast_ref::<Failure>().is_some() {
        return error;
    }
    let cancelled = error.downcast_ref::<super::cancel::Cancelled>().is_some();
    let advice = if cancelled {
        ""
    } else {
        "; check the connection to the server and run again"
    };
    Failure::deploy(format!(
        "{error:#}; nothing on the server was changed{advice}"
    ))
    .into()
}

/// Reads the state and says what was found.
pub async fn observe_for_swap<H: Host>(ctx: &Ctx<'_, H>) -> Result<Observed> {
    ctx.printer.phase("read server state");
    let observed = ctx
        .cancel
        .unless_cancelled(observe::observe(ctx))
        .await
        .map_err(nothing_changed);
    // Readings nobody took would be stale for a later reading.
    ctx.prefetched.clear();
    let observed = observed?;
    for note in &observed.notes {
        ctx.printer.notice(note);
    }
    let live = observed.live.map_or("none".to_owned(), |c| c.to_string());
    ctx.printer.info(&format!(
        "live color: {live}; the other color is {}",
        observed.target()
    ));
    Ok(observed)
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
