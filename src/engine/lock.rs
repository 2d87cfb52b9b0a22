//! The server-side deploy lock: an flock held by a process tied to our SSH channel. Waiting
//! shows who holds it; a holder whose process or connection died releases it by itself.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::record::{self, Holder, LockRecord};
use super::Ctx;
use crate::failure::Failure;
use crate::remote::batch::{self, Ran};
use crate::remote::{Host, Running};
use crate::server::state;
use crate::server::ServerCommand;

/// Held until dropped or released; dropping closes the channel and the server frees the lock.
pub struct Lock {
    running: Running,
    pub waited: Duration,
    /// The results of the batch the holder ran once it had the lock.
    pub batch: Vec<Ran>,
}

impl Lock {
    pub fn release(self) {
        self.running.finish();
    }

    /// Appends `line` to the history through the holder, still under the lock (no command of
    /// its own: the line travels on the lock's channel and the holder says `recorded`).
    pub async fn record(&mut self, line: &str) -> Result<()> {
        let mut message = line.replace('\n', " ");
        message.push('\n');
        self.running
            .stdin
            .write_all(message.as_bytes())
            .await
            .context("sending the history entry to the lock holder")?;
        self.running.stdin.flush().await.ok();
        let mut answer = String::new();
        self.running
            .stdout
            .read_line(&mut answer)
            .await
            .context("reading the lock holder's answer")?;
        match answer.trim() {
            "recorded" => Ok(()),
            "" => anyhow::bail!("the lock holder ended before it wrote the entry"),
            other => anyhow::bail!("the lock holder said `{other}`"),
        }
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

/// Takes the lock; once it is held, the holder runs `batch` (readings that must see the server
/// under the lock) in the same round trip.
pub async fn acquire<H: Host>(
    ctx: &Ctx<'_, H>,
    holder: &Holder,
    batch: &[ServerCommand],
) -> Result<Lock> {
    let started = Instant::now();
    let holder_json = serde_json::to_string(holder)?;
    let wait = ctx.config.lock_timeout.as_secs().max(1);
    let command = state::lock(&ctx.config.state_dir, &holder_json, wait);
    let mut running = ctx.host.spawn(&command, batch).await?;
    let mut line = String::new();
    // The run-aware part: a holder whose workflow run GitHub reports completed is gone for good
    // even if its connection lingers; its lock is taken over.
    let mut holder_run: Option<String> = None;
    let mut next_check = tokio::time::Instant::now();
    loop {
        let can_check = holder_run.is_some() && ctx.github.is_some();
        // A line already there is read first: "acquired" after a signal still means the
        // lock is held, and the run can say in the history that it was cancelled.
        let read = tokio::select! {
            biased;
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
            let waited = started.elapsed();
            let batch = match batch.is_empty() {
                true => Vec::new(),
                false => read_batch(ctx, &mut running).await?,
            };
            return Ok(Lock {
                running,
                waited,
                batch,
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

/// The holder's batch; on a signal it gets 1.5 s more, so that the run can still say in the
/// history that it was cancelled.
async fn read_batch<H: Host>(ctx: &Ctx<'_, H>, running: &mut Running) -> Result<Vec<Ran>> {
    // Each reading has its own deadline on the server; this one covers a hung connection.
    let deadline = ctx.config.command_timeout + Duration::from_secs(10);
    let reading = async {
        match tokio::time::timeout(deadline, batch::read_frames(&mut running.stdout)).await {
            Ok(read) => read,
            Err(_elapsed) => Err(anyhow::anyhow!(
                "the server did not answer within command_timeout"
            )),
        }
    };
    tokio::pin!(reading);
    let read = tokio::select! {
        biased;
        read = &mut reading => read,
        _ = ctx.cancel.cancelled() => {
            match tokio::time::timeout(Duration::from_millis(1500), reading).await {
                Ok(read) => read,
                Err(_elapsed) => return Err(super::cancel::Cancelled.into()),
            }
        }
    };
    match read {
        // Nothing ran: the readings run one by one instead.
        Err(error) if error.downcast_ref::<batch::NotRun>().is_some() => Ok(Vec::new()),
        read => read.context("reading the server's state"),
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
