//! The server-side deploy lock: an flock held by a process tied to our SSH channel. Waiting
//! shows who holds it; a holder whose process or connection died releases it by itself.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::AsyncBufReadExt;

use super::record::{self, Holder, LockRecord};
use super::Ctx;
use crate::failure::Failure;
use crate::remote::{Host, Running};
use crate::server::state;

/// Held until dropped or released; dropping closes the channel and the server frees the lock.
pub struct Lock {
    running: Running,
    pub waited: Duration,
}

impl Lock {
    pub fn release(self) {
        self.running.finish();
    }
}

pub fn holder(image: &str) -> Holder {
    let user = std::env::var("GITHUB_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "someone".into());
    let machine = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let run_url = crate::github::run_url_from_env();
    Holder {
        who: format!("{user}@{}", machine.trim()),
        image: image.to_owned(),
        since: record::now(),
        run_url,
        client_pid: std::process::id(),
    }
}

pub async fn acquire<H: Host>(ctx: &Ctx<'_, H>, holder: &Holder) -> Result<Lock> {
    let started = Instant::now();
    let holder_json = serde_json::to_string(holder)?;
    let wait = ctx.config.lock_timeout.as_secs().max(1);
    let command = state::lock(&ctx.config.state_dir, &holder_json, wait);
    let mut running = ctx.host.spawn(&command).await?;
    let mut line = String::new();
    // The run-aware part: a holder whose workflow run GitHub reports completed is gone for good
    // even if its connection lingers; its lock is taken over.
    let mut holder_run: Option<String> = None;
    let mut next_check = tokio::time::Instant::now();
    loop {
        let can_check = holder_run.is_some() && ctx.github.is_some();
        let read = tokio::select! {
            read = running.stdout.read_line(&mut line) => read.context("reading the lock holder's output")?,
            _ = ctx.cancel.cancelled() => return Err(super::cancel::Cancelled.into()),
            _ = tokio::time::sleep_until(next_check), if can_check => {
                next_check += TAKEOVER_CHECK;
                let (Some(github), Some(run_url)) = (ctx.github, holder_run.as_deref()) else { continue };
                take_over_if_completed(ctx, github, run_url).await;
                continue;
            }
        };
        let text = line.trim().to_owned();
        line.clear();
        if read == 0 {
            anyhow::bail!(
                "taking the deploy lock in {} failed (is flock installed on the server?)",
                ctx.config.state_dir
            );
        } else if text == "noflock" {
            return Err(Failure::deploy(format!(
                "the server has no `flock` (util-linux), which holds the deploy lock; nothing was \
                 changed; install util-linux on the server (it is part of every standard image) \
                 and run again; the lock in {} was not taken",
                ctx.config.state_dir
            ))
            .into());
        } else if text == "acquired" {
            return Ok(Lock {
                running,
                waited: started.elapsed(),
            });
        } else if text == "timeout" {
            return Err(Failure::lock(format!(
                "the deploy lock in {} was not acquired within {}s; the server was not changed; \
                 wait for the other deploy, or run `bluegreen unlock` if it is stuck",
                ctx.config.state_dir, wait
            ))
            .into());
        } else if let Some(json) = text.strip_prefix("busy") {
            let record = serde_json::from_str::<LockRecord>(json.trim()).ok();
            let who = record
                .as_ref()
                .map_or("another deploy".into(), |r| r.holder.describe());
            holder_run = record
                .and_then(|r| r.holder.run_url)
                .filter(|url| Some(url) != holder.run_url.as_ref());
            ctx.printer.progress(&format!(
                "waiting up to {wait}s for the deploy lock, held by {who}"
            ));
        }
    }
}

const TAKEOVER_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Ends the holder's server-side lock process when GitHub says its run has completed.
async fn take_over_if_completed<H: Host>(
    ctx: &Ctx<'_, H>,
    github: &crate::github::GitHub,
    run_url: &str,
) {
    match github.run_completed(run_url).await {
        Ok(true) => {
            ctx.printer.notice(&format!(
                "the lock holder's workflow run {run_url} has completed: taking its lock over"
            ));
            if let Err(error) =
                crate::remote::run_ok(ctx.host, &state::unlock(&ctx.config.state_dir)).await
            {
                ctx.printer
                    .warn(&format!("taking the lock over failed: {error:#}"));
            }
        }
        Ok(false) => {}
        Err(error) => ctx
            .printer
            .warn(&format!("{error:#}; waiting for the lock as usual")),
    }
}
