//! `bluegreen unlock`: removes a deploy lock whose holder is gone. A live holder's lock is kept
//! (a second deploy beside it could leave the server half-changed) unless `--force` says the
//! operator knows it is stuck. "Gone": its client process no longer runs on this machine, or
//! GitHub reports its workflow run completed; a holder elsewhere cannot be seen from here.

use anyhow::Result;

use super::record::{Holder, LockRecord};
use super::Ctx;
use crate::failure::Failure;
use crate::remote::{run_ok, Host};
use crate::server::state;

pub async fn unlock<H: Host>(ctx: &Ctx<'_, H>, force: bool) -> Result<String> {
    let dir = &ctx.config.state_dir;
    let shown = run_ok(ctx.host, &state::lock_holder(dir)).await?;
    let text = shown.stdout.trim();
    if text == "free" {
        return Ok(format!("the deploy lock in {dir} was not held"));
    }
    let record = serde_json::from_str::<LockRecord>(text).ok();
    let who = record.as_ref().map_or_else(
        || "a deploy that has not said who it is yet".to_owned(),
        |record| record.holder.describe(),
    );
    let gone = match &record {
        Some(record) => gone(ctx, &record.holder).await,
        None => None,
    };
    match (&gone, force) {
        (Some(why), _) => ctx
            .printer
            .notice(&format!("the lock holder is gone: {why}")),
        (None, true) => ctx.printer.notice(&format!(
            "--force: ending the lock of {who}, which may still be deploying"
        )),
        (None, false) => {
            return Err(Failure::deploy(format!(
                "the deploy lock in {dir} is held by {who}, which may still be deploying ({}); \
                 nothing was changed; wait for it to finish, or run `bluegreen unlock --force` \
                 if you know it is stuck",
                alive_because(record.as_ref().map(|r| &r.holder))
            ))
            .into())
        }
    }
    let command = match &record {
        Some(record) => state::unlock_holder(dir, record.server_pid),
        None => state::unlock(dir),
    };
    let ended = run_ok(ctx.host, &command).await?;
    if ended.stdout.lines().any(|line| line.trim() == "changed") {
        return Err(Failure::deploy(format!(
            "the deploy lock in {dir} changed hands while unlock looked at it; nothing was \
             changed; run `bluegreen status` to see the new holder"
        ))
        .into());
    }
    Ok(format!("removed the deploy lock held by {who}"))
}

/// Why the holder is known to be gone, if it is.
async fn gone<H: Host>(ctx: &Ctx<'_, H>, holder: &Holder) -> Option<String> {
    if on_this_machine(holder) && !client_runs(holder.client_pid) {
        return Some(format!(
            "its client (pid {} on this machine) no longer runs",
            holder.client_pid
        ));
    }
    let (Some(github), Some(run_url)) = (ctx.github, holder.run_url.as_deref()) else {
        return None;
    };
    match github.run_completed(run_url).await {
        Ok(true) => Some(format!("its workflow run {run_url} has completed")),
        _ => None,
    }
}

fn alive_because(holder: Option<&Holder>) -> String {
    match holder {
        Some(holder) if on_this_machine(holder) => {
            format!("its client, pid {}, still runs here", holder.client_pid)
        }
        Some(holder) if holder.run_url.is_some() => {
            "its workflow run has not completed, or GitHub could not be asked".to_owned()
        }
        _ => "it runs on another machine, which unlock cannot see".to_owned(),
    }
}

/// The holder names `user@machine`; the machine is this one's host name.
fn on_this_machine(holder: &Holder) -> bool {
    let here = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let here = here.trim();
    !here.is_empty() && holder.who.rsplit_once('@').is_some_and(|(_, m)| m == here)
}

/// Whether `pid` is a running bluegreen (a reused pid of another program is not the client).
fn client_runs(pid: u32) -> bool {
    let exe = |path: std::path::PathBuf| {
        std::fs::read_link(path)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string()))
    };
    let theirs = exe(format!("/proc/{pid}/exe").into());
    let ours = exe("/proc/self/exe".into());
    match theirs {
        Some(theirs) => Some(theirs) == ours,
        // Unreadable (another user's process): it runs; only a missing one is gone.
        None => std::path::Path::new(&format!("/proc/{pid}")).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_an_ended_one_does_not() {
        assert!(client_runs(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!client_runs(pid));
        // pid 1 is not a bluegreen.
        assert!(!client_runs(1) || std::fs::read_link("/proc/1/exe").is_err());
    }
}
