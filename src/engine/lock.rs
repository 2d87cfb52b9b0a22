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
    let run_url = match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        (Ok(server), Ok(repo), Ok(run)) => Some(format!("{server}/{repo}/actions/runs/{run}")),
        _ => None,
    };
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
    loop {
        line.clear();
        let read = tokio::select! {
            read = running.stdout.read_line(&mut line) => read.context("reading the lock holder's output")?,
            _ = ctx.cancel.cancelled() => return Err(super::cancel::Cancelled.into()),
        };
        let text = line.trim();
        if read == 0 {
            anyhow::bail!(
                "taking the deploy lock in {} failed (is flock installed on the server?)",
                ctx.config.state_dir
            );
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
            let who = serde_json::from_str::<LockRecord>(json.trim())
                .map(|record| record.holder.describe())
                .unwrap_or_else(|_| "another deploy".into());
            ctx.printer.progress(&format!(
                "waiting up to {wait}s for the deploy lock, held by {who}"
            ));
        }
    }
}
