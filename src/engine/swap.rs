//! Runs a [`Runbook`] step by step. A failure at a step takes that step's undo: nothing, stop
//! the new color, or switch back and stop it; after the verified, recorded switch failures are
//! only reported. Cancellation is checked before every step and interrupts every wait.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::bake::Verdict;
use super::counts::Impact;
use super::health::{self, Unhealthy};
use super::impact::Watch;
use super::observe::{ColorContainer, Observed};
use super::record::{self, StateFile};
use super::runbook::{Hook, Image, Runbook, Step, Undo};
use super::verify::{self, Proof};
use super::{cancel::Cancelled, switch, Ctx};
use crate::color::Color;
use crate::failure::Failure;
use crate::remote::batch::{self, NotRun, Ran};
use crate::remote::{run_ok, Host, Output};
use crate::server::routes::{self, Baseline};
use crate::server::{docker, state, ServerCommand};

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
    /// What `old` ran (by digest, when it was deployed by digest); empty when unknown.
    pub previous_image: String,
    pub health_attempts: u32,
    pub timings: Timings,
    pub drain: String,
    pub round_trips: usize,
    pub seconds: f64,
    /// The image was already live: nothing changed.
    pub unchanged: bool,
    /// How the switch was shown to work ("" when unchanged).
    pub proof: String,
    /// What the bake window counted (`None`: no bake).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake: Option<String>,
    /// What the probe requests through nginx got from the start of the new color until the
    /// old one stopped (`None`: nothing was counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    /// The commit `image` was built from, when known (recorded in the history for
    /// `rollback --to` and the GitHub Deployment of a rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

impl Summary {
    pub fn line(&self) -> String {
        if self.unchanged {
            let hint = if self.action == "deployed" {
                " (use --force to redeploy)"
            } else {
                ""
            };
            return format!(
                "already live: {} serves {}; nothing was changed{hint}",
                self.new, self.image
            );
        }
        let old = self.old.map_or("nothing".to_owned(), |c| c.to_string());
        let bake = self
            .bake
            .as_ref()
            .map(|bake| format!("; {bake}"))
            .unwrap_or_default();
        // Last, after the timings (which scripts read by their labels).
        let impact = self
            .impact
            .as_ref()
            .map(|impact| format!("; {}", impact.describe()))
            .unwrap_or_default();
        let t = &self.timings;
        format!(
            "{} {}: {old} → {} in {:.1}s; {}{bake} (lock {:.1}s, pull {:.2}s, start {:.2}s, health {:.2}s in {} probes, \
             switch {:.2}s, verify {:.2}s, drain {:.2}s, stop old {:.2}s); {} SSH round trips{impact}",
            self.action, self.image, self.new, self.seconds, self.proof, t.lock_wait, t.pull, t.start,
            t.health, self.health_attempts, t.switch, t.verify, t.drain, t.stop, self.round_trips
        )
    }
}

/// The commit label of the color a runbook starts (a deploy's built commit), when known.
fn started_sha(runbook: &Runbook) -> Option<String> {
    runbook.entries.iter().find_map(|entry| match &entry.step {
        Step::Start(_, _, sha) if sha != "unknown" && sha != "rollback" => Some(sha.clone()),
        _ => None,
    })
}

/// What serves traffic now, for failure messages.
pub fn serving_now(observed: &Observed) -> String {
    match observed.live {
        Some(color) if observed.serving(color) => format!("{color} still serves traffic"),
        Some(color) => format!(
            "nginx still points at {color}, which was not running before this run: nothing serves"
        ),
        None => "nothing served before this first deploy".to_owned(),
    }
}

/// What serves after a failed run, checked: the old color running is not enough when nginx
/// itself does not answer. (Skipped after a signal: there is no time for a request.)
async fn serving_after_failure<H: Host>(ctx: &Ctx<'_, H>, observed: &Observed) -> String {
    let claimed = serving_now(observed);
    let Some(live) = observed.live.filter(|c| observed.serving(*c)) else {
        return claimed;
    };
    if ctx.cancel.is_cancelled() {
        return claimed;
    }
    // Right after a switch back, nginx's old workers may still answer for the new color:
    // asked again for up to 2 s until a 2xx.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let reason = loop {
        match verify::through_nginx(ctx).await {
            Ok(_) => return claimed,
            Err(reason) if std::time::Instant::now() >= deadline => break reason,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let url = ctx.config.verify_url.render();
    if reason.starts_with("HTTP ") {
        // nginx answers: it is the app behind it that fails.
        format!("{live} runs and nginx points at it, but {url} answered {reason} through nginx; check {live}")
    } else {
        format!(
            "{live} is running but nginx does not answer ({url}: {reason}): the site is down; check nginx"
        )
    }
}

/// What the request asks beyond the runbook.
pub struct Request<'a> {
    /// "deploy" or "rollback", for the history.
    pub action: &'a str,
    /// Redeploy even when the image is already live.
    pub force: bool,
}

/// What the steps found out so far.
struct Progress {
    image: String,
    image_id: Option<String>,
    containers: HashMap<Color, ColorContainer>,
    /// The verification's first reading of the connections, kept on the server until a
    /// comparison (or [`forget_baseline`]) removed it.
    baseline: Option<Baseline>,
    proof: Option<Proof>,
    bake: Option<String>,
    /// What the probe requests through nginx got, once counting ended.
    impact: Option<Impact>,
    repointed: bool,
    health_attempts: u32,
    drain: String,
    timings: Timings,
    unchanged: bool,
    /// The batch under way: a failure up to its last entry undoes what its commands that ran
    /// (or may have run) did, whichever step is current.
    batch: Option<BatchUndo>,
    /// The new state.json, made once (it carries a time): the batch that runs the record and
    /// the record step must build the very same command.
    state_json: std::cell::OnceCell<String>,
    /// A color whose log lines the failure shows, read after traffic is switched back (its
    /// users get 5xx until then: the switch back comes first).
    logs_after_undo: Option<Color>,
    /// The old color's check made during a failing verification (`Some(None)`: it runs and
    /// answers health), so the switch back need not wait for it.
    old_checked: Option<Option<String>>,
}

/// A step's failure: what went wrong, the advice, and the logs to show.
struct StepError {
    cause: String,
    advice: &'static str,
    logs: Vec<String>,
}

impl StepError {
    /// `cause: error` with `advice`; a cancellation stays a plain "cancelled" with no advice.
    fn new(
        error: anyhow::Error,
        cause: impl FnOnce(&anyhow::Error) -> String,
        advice: &'static str,
    ) -> StepError {
        if error.downcast_ref::<Cancelled>().is_some() {
            return error.into();
        }
        StepError {
            cause: cause(&error),
            advice,
            logs: Vec::new(),
        }
    }
}

impl From<anyhow::Error> for StepError {
    fn from(error: anyhow::Error) -> Self {
        let cancelled = error.downcast_ref::<Cancelled>().is_some();
        StepError {
            cause: format!("{error:#}"),
            advice: if cancelled {
                ""
            } else {
                "fix the problem and run again"
            },
            logs: Vec::new(),
        }
    }
}

/// Runs the steps while the impact prober runs beside them; the prober ends with the run.
pub async fn run<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    request: &Request<'_>,
) -> Result<Summary> {
    let watch = Watch::default();
    tokio::select! {
        biased;
        outcome = run_steps(ctx, observed, runbook, request, &watch) => outcome,
        never = watch.probe(ctx) => match never {},
    }
}

async fn run_steps<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    request: &Request<'_>,
    watch: &Watch,
) -> Result<Summary> {
    let mut progress = Progress {
        image: String::new(),
        image_id: None,
        containers: observed.containers.clone(),
        baseline: None,
        proof: None,
        bake: None,
        impact: None,
        repointed: false,
        health_attempts: 0,
        drain: "nothing to drain".into(),
        timings: Timings::default(),
        unchanged: false,
        batch: None,
        state_json: std::cell::OnceCell::new(),
        logs_after_undo: None,
        old_checked: None,
    };
    for (index, entry) in runbook.entries.iter().enumerate() {
        if progress.unchanged {
            break;
        }
        if progress.batch.is_some_and(|batch| index > batch.last) {
            progress.batch = None;
        }
        if skipped(entry, runbook, &progress) {
            continue;
        }
        let outcome = match ctx.cancel.check() {
            Err(cancelled) => Err(StepError::from(anyhow::Error::new(cancelled))),
            Ok(()) => {
                let running = async {
                    watch.before(&entry.step, runbook.old).await;
                    run_ahead(ctx, observed, runbook, index, &mut progress).await?;
                    step(
                        ctx,
                        observed,
                        runbook,
                        request,
                        &entry.step,
                        &mut progress,
                        watch,
                    )
                    .await
                };
                within_grace_of_a_signal(ctx, running).await
            }
        };
        let Err(error) = outcome else {
            watch.after(&entry.step, progress.proof);
            continue;
        };
        // What the batch ran ahead is stale now; a lost batch undoes for all its steps.
        ctx.prefetched.clear();
        let undo = progress
            .batch
            .take()
            .map_or(entry.undo, |batch| batch.undo.max(entry.undo));
        if undo == Undo::Report {
            ctx.printer.warn(&format!(
                "{}; {} serves traffic (verified); {} may still be running",
                error.cause,
                runbook.target,
                runbook.target.other()
            ));
            continue;
        }
        watch.end();
        progress.impact = watch.impact();
        // Made during this very verification only (a later bake asks again).
        let checked = progress
            .old_checked
            .take()
            .filter(|_| matches!(entry.step, Step::Verify(_)));
        if let Some(gone) =
            old_gone_after_switch(ctx, observed, runbook, &entry.step, undo, checked).await
        {
            forget_baseline(ctx, &mut progress).await;
            return Err(keep_new(runbook, &gone, &progress, error));
        }
        let failure = self::undo(ctx, observed, runbook, undo, &progress, error).await;
        forget_baseline(ctx, &mut progress).await;
        return Err(failure);
    }
    // Proven by name after a first reading, and no old color's batch took the reading along.
    forget_baseline(ctx, &mut progress).await;
    // Unchanged: nothing moved, the live color still serves (not the would-be target).
    let (old, new) = match observed.live {
        Some(live) if progress.unchanged => (None, live),
        _ => (runbook.old, runbook.target),
    };
    Ok(Summary {
        action: if request.action == "rollback" {
            "rolled back to".into()
        } else {
            "deployed".into()
        },
        old,
        new,
        image: progress.image,
        previous_image: old
            .map(|color| previous_image(observed, color))
            .unwrap_or_default(),
        health_attempts: progress.health_attempts,
        timings: progress.timings,
        drain: progress.drain,
        round_trips: 0,
        seconds: 0.0,
        unchanged: progress.unchanged,
        proof: progress
            .proof
            .map(|p| p.describe(runbook.target))
            .unwrap_or_default(),
        bake: progress.bake,
        impact: watch.impact(),
        sha: started_sha(runbook),
    })
}

/// Runs a step; on a signal, the step gets 1.5 s to finish so that what it did is known
/// (its own result is kept when it finishes), then the run is cancelled.
async fn within_grace_of_a_signal<H: Host>(
    ctx: &Ctx<'_, H>,
    running: impl std::future::Future<Output = Result<(), StepError>>,
) -> Result<(), StepError> {
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => result,
        _ = ctx.cancel.cancelled() => {
            match tokio::time::timeout(Duration::from_millis(1500), running).await {
                Ok(result) => result,
                Err(_still_running) => Err(StepError::from(anyhow::Error::new(Cancelled))),
            }
        }
    }
}

/// The image `color` served before this run: its container's, else the one state.json recorded.
fn previous_image(observed: &Observed, color: Color) -> String {
    let image = super::runbook::image_of(observed, color);
    if !image.is_empty() {
        return image;
    }
    match observed.state.live_color {
        Some(live) if live == color => observed.state.live_image.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Runs a command; on a signal, a command already under way gets 1.5 s to finish so
/// that what it did is known, then the run is cancelled.
async fn run_step<H: Host>(ctx: &Ctx<'_, H>, command: &ServerCommand) -> Result<Ran> {
    ctx.printer.info(&command.render(ctx.host.sudo()));
    let running = ctx.run_ok_timed(command);
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => result,
        _ = ctx.cancel.cancelled() => {
            let _finished_or_not = tokio::time::timeout(Duration::from_millis(1500), running).await;
            Err(Cancelled.into())
        }
    }
}

/// Runs the commands in order (or takes their results from the batch that ran them); also
/// how long they took on the server.
async fn run_all<H: Host>(
    ctx: &Ctx<'_, H>,
    commands: &[ServerCommand],
) -> Result<(Vec<Output>, f64)> {
    let mut outputs = Vec::with_capacity(commands.len());
    let mut took = 0.0;
    for command in commands {
        let ran = run_step(ctx, command).await?;
        took += ran.took.unwrap_or_default().as_secs_f64();
        outputs.push(ran.output);
    }
    Ok((outputs, took))
}

/// Entries the runner passes over: an unverified switch keeps the old color running.
fn skipped(entry: &super::runbook::Entry, runbook: &Runbook, progress: &Progress) -> bool {
    progress.proof == Some(Proof::Unverified)
        && matches!(entry.step, Step::Drain(c) | Step::Stop(c) | Step::StopAdopted(c) if Some(c) == runbook.old)
}

/// Steps that are only commands, whose commands are known before the step before them ran.
fn batchable(step: &Step) -> bool {
    matches!(
        step,
        Step::Drain(_)
            | Step::Remove(_)
            | Step::Start(..)
            | Step::StartKept(..)
            | Step::Switch(_)
            | Step::Record
            | Step::Stop(_)
            | Step::StopAdopted(_)
    )
}

/// The commands a step runs, exactly as [`step`] runs them.
fn step_commands<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    step: &Step,
    progress: &Progress,
) -> Vec<ServerCommand> {
    match step {
        Step::Record => vec![state::record(
            &ctx.config.state_dir,
            progress
                .state_json
                .get_or_init(|| state_after(observed, runbook, progress)),
            "",
        )],
        Step::Start(_, Image::Known(image), _) | Step::StartKept(_, image) => {
            step.commands(ctx, observed, image)
        }
        _ => step.commands(ctx, observed, &progress.image),
    }
}

/// When the entry at `index` begins a run of batchable steps (not yet run), runs all their
/// commands in one round trip — with the removal of a verification's leftover reading when
/// the old color stops — and keeps the results for the steps to take. A step whose commands
/// did not run (the batch ended at a failure) runs them itself.
async fn run_ahead<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    index: usize,
    progress: &mut Progress,
) -> Result<(), StepError> {
    let starts_batch = index == 0
        || !batchable(&runbook.entries[index - 1].step)
        || skipped(&runbook.entries[index - 1], runbook, progress);
    if !starts_batch || !batchable(&runbook.entries[index].step) {
        return Ok(());
    }
    let indexed: Vec<(usize, &super::runbook::Entry)> = runbook
        .entries
        .iter()
        .enumerate()
        .skip(index)
        .filter(|(_, entry)| !skipped(entry, runbook, progress))
        .take_while(|(_, entry)| batchable(&entry.step))
        .collect();
    let stops_old = indexed
        .iter()
        .any(|(_, entry)| matches!(entry.step, Step::Stop(c) | Step::StopAdopted(c) if Some(c) == runbook.old));
    let mut commands = Vec::new();
    let leftover_reading = match (&progress.baseline, stops_old) {
        (Some(baseline), true) => Some(routes::forget(&baseline.file)),
        _ => None,
    };
    commands.extend(leftover_reading.clone());
    // Where each entry's commands begin in the batch, with its undo.
    let mut starts = Vec::new();
    for (_, entry) in &indexed {
        starts.push((commands.len(), entry.undo));
        commands.extend(step_commands(ctx, observed, runbook, &entry.step, progress));
    }
    if commands.len() < 2 || !batch::can_carry(&commands, batch::Mode::StopAtFailure) {
        return Ok(());
    }
    // The undo for the entries any of whose commands ran, given how many commands ran.
    let last = indexed.last().map_or(index, |(at, _)| *at);
    let undo_after = |ran: usize| {
        starts
            .iter()
            .filter(|(start, _)| ran > *start)
            .map(|(_, undo)| *undo)
            .max()
            .map(|undo| BatchUndo { last, undo })
    };
    // Until the answer says what ran, any of it may have (a signal may drop this wait).
    progress.batch = undo_after(usize::MAX);
    match ctx.host.run_batch(&commands).await {
        Ok(results) => {
            progress.batch = undo_after(results.len());
            let mut results = commands.into_iter().zip(results);
            if leftover_reading.is_some() {
                progress.baseline = None;
                if let Some((_, ran)) = results.next().filter(|(_, ran)| !ran.output.success()) {
                    ctx.printer.info(&format!(
                        "could not remove the reading of the connections: {}",
                        ran.output.tail(2)
                    ));
                }
            }
            for (command, ran) in results {
                ctx.printer.ran_ahead(ran.took.unwrap_or_default());
                ctx.prefetched.put(command, ran);
            }
            Ok(())
        }
        // The batch could not start on the server (no temporary directory): nothing ran, and
        // each step runs its own commands.
        Err(error) if error.downcast_ref::<NotRun>().is_some() => {
            progress.batch = None;
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// What a failure within a batch undoes, up to the batch's last entry.
#[derive(Clone, Copy)]
struct BatchUndo {
    last: usize,
    undo: Undo,
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

async fn step<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    request: &Request<'_>,
    step: &Step,
    progress: &mut Progress,
    watch: &Watch,
) -> Result<(), StepError> {
    let target = runbook.target;
    let started = Instant::now();
    ctx.printer.phase(&step.describe(ctx));
    let commands = step_commands(ctx, observed, runbook, step, progress);
    match step {
        Step::Repoint(_) => {
            run_all(ctx, &commands).await?;
            progress.repointed = true;
        }
        Step::Pull(reference) if matches!(ctx.runtime, super::Runtime::Process(_)) => {
            put_release(ctx, &commands, reference).await?;
            progress.image = reference.clone();
            progress.timings.pull = secs(started);
        }
        Step::Pull(reference) => {
            let (outputs, _) = run_all(ctx, &commands).await.map_err(|e| {
                StepError::new(
                    e,
                    |e| format!("pulling {reference} on the server failed: {e:#}"),
                    "check image, registry, docker_username and docker_token",
                )
            })?;
            let stdout = &outputs[0].stdout;
            progress.image = super::deploy::pinned_reference(reference, stdout);
            progress.image_id = stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix("id "))
                .map(str::to_owned);
            progress.timings.pull = secs(started);
            ctx.printer.info(&format!(
                "pulled {} in {:.1}s",
                progress.image, progress.timings.pull
            ));
        }
        Step::StopIfLive => {
            let live = observed
                .live
                .and_then(|c| observed.containers.get(&c).filter(|c| c.running));
            let same = live.is_some_and(|c| {
                c.image_ref == progress.image
                    || progress
                        .image_id
                        .as_deref()
                        .is_some_and(|id| id == c.image_id)
            });
            if same && !request.force {
                progress.unchanged = true;
            }
        }
        Step::Drain(color) => {
            let (outputs, took) = run_all(ctx, &commands).await?;
            progress.drain = drained_text(*color, &outputs[0], took);
            ctx.printer.info(&progress.drain);
            progress.timings.drain += took;
        }
        Step::Remove(_) => {
            run_all(ctx, &commands).await?;
        }
        Step::Start(_, source, _) => {
            if let Image::Known(image) = source {
                progress.image = image.clone();
            }
            progress.timings.start = run_all(ctx, &commands).await?.1;
        }
        Step::StartKept(_, image) => {
            progress.image = image.clone();
            progress.timings.start = run_all(ctx, &commands).await?.1;
        }
        Step::CheckRunsImage(color) => check_runs_image(ctx, *color, progress).await?,
        Step::WaitHealthy(color) => wait_healthy(ctx, *color, progress).await?,
        Step::Switch(_) => {
            progress.timings.switch = switch::apply(ctx, &commands).await.map_err(|e| {
                StepError::new(
                    e,
                    |e| format!("switching traffic to {target} failed: {e:#}"),
                    "fix the nginx settings and deploy again",
                )
            })?;
        }
        Step::Verify(color) => {
            let deadline = Duration::from_secs(10);
            // At the first 5xx, whether the old color could take traffic back is asked
            // beside the verification: users get those 5xx until the switch back.
            let failing = tokio::sync::Notify::new();
            let verifying = verify::verify(
                ctx,
                *color,
                &mut progress.baseline,
                &mut progress.containers,
                deadline,
                watch,
                &failing,
            );
            let old = runbook.old;
            let precheck = async {
                failing.notified().await;
                match old {
                    Some(old) => switch::old_color_gone(ctx, observed, old).await,
                    None => None,
                }
            };
            tokio::pin!(verifying, precheck);
            let mut checked = None;
            let proof = loop {
                tokio::select! {
                    proof = &mut verifying => break proof,
                    gone = &mut precheck, if checked.is_none() => checked = Some(gone),
                }
            };
            // A 5xx run notified the check, which may still be under way: its answer is
            // nearer than a new one.
            let answered_5xx = proof
                .as_ref()
                .is_err_and(|e| e.downcast_ref::<verify::Answered5xx>().is_some());
            if answered_5xx && checked.is_none() {
                checked = Some(precheck.await);
            }
            progress.old_checked = checked;
            let proof =
                match proof {
                    Ok(proof) => proof,
                    Err(error) if error.downcast_ref::<verify::Answered5xx>().is_some() => {
                        progress.logs_after_undo = Some(*color);
                        return Err(StepError {
                            cause: format!("{error:#}"),
                            advice: "see its log lines above, fix the app and deploy again",
                            logs: Vec::new(),
                        });
                    }
                    Err(error) => return Err(StepError::new(
                        error,
                        |e| format!("{e:#}"),
                        "check that nginx includes nginx_switch_file (a file bind-mounted into \
                         a container by itself never sees the change), then deploy again",
                    )),
                };
            ctx.printer.info(&proof.describe(*color));
            if proof == Proof::Unverified {
                ctx.printer.warn(&format!(
                    "unverified switch: {} is kept running; check how nginx reaches the colors",
                    target.other()
                ));
            }
            progress.proof = Some(proof);
            progress.timings.verify = secs(started);
        }
        Step::Record => {
            run_all(ctx, &commands).await.map_err(|e| {
                StepError::new(
                    e,
                    |e| {
                        format!(
                            "recording the deploy in {} failed: {e:#}",
                            ctx.config.state_dir
                        )
                    },
                    "make room in (or fix the permissions of) state_dir, then deploy again",
                )
            })?;
        }
        Step::Bake(color) => {
            let verdict = super::bake::bake(ctx, *color, watch)
                .await
                .map_err(anyhow::Error::new)?;
            let passed = match verdict {
                Verdict::Passed(passed) => passed,
                Verdict::Failed(cause) => {
                    return Err(StepError {
                        logs: print_logs(ctx, *color).await,
                        cause,
                        advice: "see its log lines above, fix the app and deploy again",
                    })
                }
            };
            ctx.printer.info(&passed);
            progress.bake = Some(passed);
        }
        Step::Stop(_) | Step::StopAdopted(_) => {
            progress.timings.stop = run_all(ctx, &commands).await?.1;
        }
        Step::Hook(hook, _) => {
            run_all(ctx, &commands).await.map_err(|e| {
                StepError::new(
                    e,
                    |e| format!("{} failed: {e:#}", hook.setting()),
                    match hook {
                        Hook::PreSwitch => "fix pre_switch_command and deploy again",
                        Hook::PostDeploy => "fix post_deploy_command",
                    },
                )
            })?;
        }
    }
    Ok(())
}

/// Removes the reading of the connections the verification left on the server (it was proven
/// by name, or never compared); a failure only leaves a small file that the next reading
/// removes after ten minutes.
async fn forget_baseline<H: Host>(ctx: &Ctx<'_, H>, progress: &mut Progress) {
    if let Some(baseline) = progress.baseline.take() {
        if let Err(error) = verify::forget(ctx, &baseline).await {
            ctx.printer
                .info(&format!("could not remove {}: {error:#}", baseline.file));
        }
    }
}

/// Process mode: the upload (second command) runs only when the check (first) says `absent`.
async fn put_release<H: Host>(
    ctx: &Ctx<'_, H>,
    commands: &[ServerCommand],
    reference: &str,
) -> Result<(), StepError> {
    let present = run_step(ctx, &commands[0]).await?;
    if present.output.stdout.trim() == "present" {
        ctx.printer.info(&format!(
            "{reference} is on the server already: not uploaded"
        ));
        return Ok(());
    }
    let Some(upload) = commands.get(1) else {
        return Err(StepError {
            cause: format!(
                "{reference} is not on the server (only the newest {} releases are kept) and \
                 the local artifact is another release",
                crate::server::process::KEEP_RELEASES
            ),
            advice: "deploy the artifact you want (bluegreen deploy with artifact set)",
            logs: Vec::new(),
        });
    };
    run_step(ctx, upload).await.map_err(|e| {
        StepError::new(
            e,
            |e| format!("uploading {reference} to the server failed: {e:#}"),
            "check free disk space and permissions in state_dir, then deploy again",
        )
    })?;
    Ok(())
}

fn drained_text(color: Color, output: &Output, took: f64) -> String {
    let mut words = output.stdout.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("drained"), _, _) => format!("{color} drained in {took:.1}s"),
        (Some("busy"), Some("0"), Some(workers)) => format!(
            "{workers} nginx workers from before the reload were still shutting down after drain_timeout"
        ),
        (Some("busy"), Some(n), _) => {
            format!("{color} still had {n} connections or connection attempts after drain_timeout")
        }
        _ => format!("{color}'s connections could not be read; waited drain_timeout"),
    }
}

async fn wait_healthy<H: Host>(
    ctx: &Ctx<'_, H>,
    color: Color,
    progress: &mut Progress,
) -> Result<(), StepError> {
    let started = Instant::now();
    match health::wait_healthy(ctx, color).await {
        Ok(healthy) => {
            progress.health_attempts = healthy.attempts;
            progress.timings.health = healthy.elapsed.as_secs_f64();
            ctx.printer.info(&format!(
                "{color} healthy after {:.2}s ({} probes)",
                progress.timings.health, healthy.attempts
            ));
            Ok(())
        }
        Err(Unhealthy::Cancelled) => Err(anyhow::Error::new(Cancelled).into()),
        Err(unhealthy) => Err(StepError {
            logs: print_logs(ctx, color).await,
            cause: format!(
                "health check of {color} (127.0.0.1:{}{}) failed after {:.1}s: {unhealthy}",
                ctx.config.port_of(color),
                ctx.config.health_path,
                started.elapsed().as_secs_f64()
            ),
            advice: "see its log lines above, fix the app and deploy again",
        }),
    }
}

/// Compose mode: a file with a fixed tag runs whatever that tag is, not what was pulled.
async fn check_runs_image<H: Host>(
    ctx: &Ctx<'_, H>,
    color: Color,
    progress: &mut Progress,
) -> Result<(), StepError> {
    let containers = super::observe::containers(ctx).await?;
    let running = containers
        .get(&color)
        .map(|c| c.image_id.clone())
        .unwrap_or_default();
    match &progress.image_id {
        Some(pulled) if *pulled != running => Err(StepError {
            cause: format!(
                "the compose service of {color} runs image {} instead of the pulled {} ({})",
                short_id(&running),
                progress.image,
                short_id(pulled)
            ),
            advice: "write `image: ${BLUEGREEN_IMAGE}` for the service in the compose file so it runs exactly the deployed image",
            logs: Vec::new(),
        }),
        _ => Ok(()),
    }
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// state.json after the switch: the new live image, and the previous good one.
fn state_after(observed: &Observed, runbook: &Runbook, progress: &Progress) -> String {
    let previous_color = observed.live.filter(|live| *live != runbook.target);
    // An adopted app was not built by bluegreen: there is no image of it to roll back to.
    let adopted = observed.adopted.as_ref().map(|a| a.color);
    let previous_image = previous_color
        .filter(|c| Some(*c) != adopted)
        .and_then(|color| {
            observed
                .containers
                .get(&color)
                .map(|c| c.image_ref.clone())
                .or_else(|| observed.state.live_image.clone())
        });
    let state = StateFile {
        live_color: Some(runbook.target),
        live_image: Some(progress.image.clone()),
        previous_color,
        previous_image,
        updated: Some(record::now()),
    };
    serde_json::to_string(&state).expect("state serializes")
}

/// After a switch that took effect (verification or bake failed), the old color is switched
/// back to only when it still runs and answers health: `Some(why)` when it does not.
async fn old_gone_after_switch<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    step: &Step,
    undo: Undo,
    checked: Option<Option<String>>,
) -> Option<String> {
    let old = runbook.old?;
    if undo != Undo::SwitchBack || !matches!(step, Step::Verify(_) | Step::Bake(_)) {
        return None;
    }
    match checked {
        Some(gone) => gone,
        None => switch::old_color_gone(ctx, observed, old).await,
    }
}

/// The failure line when the old color is gone: traffic stays on the new color, nothing is
/// stopped (switching back would point nginx at nothing).
fn keep_new(runbook: &Runbook, gone: &str, progress: &Progress, error: StepError) -> anyhow::Error {
    let new = runbook.target;
    let serving = format!(
        "{new} still serves traffic: traffic was not switched back because {gone}; nothing was stopped"
    );
    Failure::deploy(format!(
        "{}; {serving}; fix {new} or deploy a fixed version (the old color cannot take traffic)",
        error.cause
    ))
    .serving(serving)
    .serving_color(Some(new))
    .logs(error.logs)
    .impact(progress.impact.clone())
    .into()
}

/// Undoes what a failed step leaves and builds the one error line: cause, what serves now,
/// what was undone, what to do. After a signal the undo gets [`UNDO_BUDGET`], so the process
/// ends within the 5 s a cancelled runner waits; what did not finish is said.
async fn undo<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    kind: Undo,
    progress: &Progress,
    error: StepError,
) -> anyhow::Error {
    if !ctx.cancel.is_cancelled() {
        return undo_now(ctx, observed, runbook, kind, progress, error).await;
    }
    let target = runbook.target;
    let cause = error.cause.clone();
    match tokio::time::timeout(UNDO_BUDGET, undo_now(ctx, observed, runbook, kind, progress, error)).await {
        Ok(error) => error,
        Err(_elapsed) => Failure::deploy(format!(
            "{cause}; undoing did not finish within {}s of the signal: {target} may still be \
             running and nginx may point at it; run `bluegreen status`, then `bluegreen deploy` again",
            UNDO_BUDGET.as_secs_f64()
        ))
        .impact(progress.impact.clone())
        .into(),
    }
}

const UNDO_BUDGET: Duration = Duration::from_millis(2500);

async fn undo_now<H: Host>(
    ctx: &Ctx<'_, H>,
    observed: &Observed,
    runbook: &Runbook,
    undo: Undo,
    progress: &Progress,
    error: StepError,
) -> anyhow::Error {
    let target = runbook.target;
    let mut done = Vec::new();
    if undo == Undo::SwitchBack {
        // The record may have been written before its answer was lost: put the old one back,
        // on a channel of its own beside the switch back (users wait for the switch only).
        let previous = serde_json::to_string(&observed.state).expect("state serializes");
        let record = state::record(&ctx.config.state_dir, &previous, "");
        let (restored, back) = tokio::join!(
            run_ok(ctx.host, &record),
            switch::back(ctx, observed, progress.repointed)
        );
        if let Err(error) = restored {
            done.push(format!("restoring state.json failed: {error:#}"));
        }
        done.push(match back {
            Ok(text) => text,
            Err(back) => format!("switching back failed too: {back:#}"),
        });
    }
    let mut logs = error.logs;
    if let Some(color) = progress.logs_after_undo {
        logs = print_logs(ctx, color).await;
    }
    if matches!(undo, Undo::StopNew | Undo::SwitchBack) {
        done.push(stop_new(ctx, target, &progress.image).await);
    } else {
        done.push("nothing was changed".into());
    }
    let serving = serving_after_failure(ctx, observed).await;
    let still_serving = observed
        .live
        .filter(|color| observed.running(*color) && serving == serving_now(observed));
    // Failed requests through nginx are part of what happened; a clean count is no news here.
    if let Some(impact) = progress.impact.as_ref().filter(|i| i.total.failed() > 0) {
        done.push(match undo {
            Undo::Nothing | Undo::StopNew => impact.describe_over("before any switch"),
            Undo::SwitchBack | Undo::Report => impact.describe(),
        });
    }
    let advice = if error.advice.is_empty() {
        String::new()
    } else {
        format!("; {}", error.advice)
    };
    Failure::deploy(format!(
        "{}; {serving}; {}{advice}",
        error.cause,
        done.join("; ")
    ))
    .serving(serving)
    .serving_color(still_serving)
    .logs(logs)
    .impact(progress.impact.clone())
    .into()
}

/// Stops the new color after a failed attempt; best effort, the error already says what failed.
/// After a signal it gets one second of grace: it never served alone, and time is short.
async fn stop_new<H: Host>(ctx: &Ctx<'_, H>, color: Color, image: &str) -> String {
    let grace = if ctx.cancel.is_cancelled() {
        1
    } else {
        ctx.config.stop_timeout.as_secs()
    };
    for command in ctx.runtime.stop_within(ctx.config, color, image, grace) {
        if let Err(error) = run_ok(ctx.host, &command).await {
            return format!("stopping {color} also failed: {error:#}");
        }
    }
    format!("{color} is not running")
}

/// Prints the new color's last log lines and returns them (for the step summary).
async fn print_logs<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Vec<String> {
    let command = match &ctx.runtime {
        super::Runtime::Process(_) => crate::server::process::logs(&ctx.config.state_dir, color),
        _ => match container_to_log(ctx, color).await {
            Some(name) => docker::logs(&name),
            None => return Vec::new(),
        },
    };
    let Ok(output) = ctx.host.run(&command).await else {
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
    let _commands_stopped = ctx.printer.stop_commands();
    for line in &lines {
        ctx.printer.quoted(line);
    }
    lines
}

/// The container whose logs show why a color failed (container and compose modes).
async fn container_to_log<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Option<String> {
    match &ctx.runtime {
        super::Runtime::Compose(_) => super::observe::containers(ctx)
            .await
            .ok()
            .and_then(|c| c.get(&color).map(|c| c.id.clone())),
        _ => Some(docker::container_name(ctx.config, color)),
    }
}
