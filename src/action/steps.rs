//! What each `command` does in the action, filling the report as it learns things.

use anyhow::Result;

use super::report::{Report, RunResult};
use super::ActionCommand;
use crate::engine::swap::Summary;
use crate::engine::{self, Cancel, Ctx, Runtime};
use crate::failure::Failure;
use crate::github::GitHub;
use crate::printer::Printer;
use crate::settings::Config;

/// What goes to the server: the reference, the commit, and whether that commit was built here.
struct Target {
    image_ref: String,
    sha: String,
    built: bool,
}

pub async fn run(
    command: ActionCommand,
    config: &Config,
    printer: &Printer,
    cancel: &Cancel,
    github: Option<&GitHub>,
    report: &mut Report,
) -> Result<()> {
    // Logged in to the server before a build: a refused key is known in seconds.
    let early = match command {
        ActionCommand::Ship => {
            crate::build::preflight(config)?;
            Some(crate::app::connect(config, printer).await?)
        }
        _ => None,
    };
    let target = match command {
        ActionCommand::Ship => build(config, printer, cancel, report).await?,
        _ => {
            report.tag = matches!(command, ActionCommand::Deploy | ActionCommand::Plan)
                .then(|| config.environment.clone());
            Target {
                image_ref: format!("{}:{}", config.image, config.environment),
                sha: crate::app::commit_sha(config),
                built: false,
            }
        }
    };
    // Process mode: the jar this run deploys (built just now by `ship`, or already there).
    let release = match command {
        ActionCommand::Ship | ActionCommand::Deploy | ActionCommand::Plan => {
            crate::build::artifact::local_release(config)?
        }
        _ => None,
    };
    let target = match (&release, command) {
        (Some(release), ActionCommand::Deploy | ActionCommand::Plan) => Target {
            image_ref: release.reference(),
            ..target
        },
        _ => target,
    };
    let (host, tool) = match early {
        Some(connected) => connected,
        None => crate::app::connect(config, printer).await?,
    };
    // A deploy or rollback asks under the lock, in the round trip that reads the server.
    let asks_under_lock = matches!(
        command,
        ActionCommand::Ship | ActionCommand::Deploy | ActionCommand::Rollback
    );
    let choice = match engine::traffic::resolve_unless(asks_under_lock, &host, config).await {
        Ok(choice) => choice,
        Err(error) => {
            host.close().await;
            return Err(error);
        }
    };
    let resolved = engine::traffic::resolved(config, choice.as_ref(), printer);
    let config = resolved.as_ref().unwrap_or(config);
    let ctx = Ctx {
        config,
        host: &host,
        printer,
        runtime: Runtime::new(config, tool).with_release(release),
        cancel: cancel.clone(),
        github,
        prefetched: Default::default(),
    };
    let outcome = on_server(command, &ctx, &target, report).await;
    printer.end_phase();
    host.close().await;
    outcome
}

async fn build(
    config: &Config,
    printer: &Printer,
    cancel: &Cancel,
    report: &mut Report,
) -> Result<Target> {
    let built = tokio::select! {
        built = crate::build::build(config, printer) => built?,
        _ = cancel.cancelled() => return Err(Failure::deploy(
            "cancelled during the build; nothing was pushed or deployed; what served before still serves",
        ).into()),
    };
    report.tag = built
        .tags
        .last()
        .and_then(|tag| tag.rsplit(':').next())
        .map(str::to_owned);
    report.image = Some(built.reference.clone());
    Ok(Target {
        image_ref: built.reference,
        sha: built.sha,
        built: true,
    })
}

async fn on_server(
    command: ActionCommand,
    ctx: &Ctx<'_, crate::remote::ssh::SshHost>,
    target: &Target,
    report: &mut Report,
) -> Result<()> {
    match command {
        ActionCommand::Ship | ActionCommand::Deploy => {
            let summary =
                engine::deploy::deploy(ctx, &target.image_ref, &target.sha, target.built, false)
                    .await?;
            record_swap(ctx.printer, report, summary);
        }
        ActionCommand::Rollback => {
            let to = super::rollback_to()?;
            let summary = engine::rollback::rollback_to(ctx, &to, "the `to` input").await?;
            report.commit = summary.sha.clone().unwrap_or_default();
            record_swap(ctx.printer, report, summary);
        }
        ActionCommand::Status => {
            let status = engine::status::status(ctx).await?;
            ctx.printer.stdout(status.human().trim_end());
            report.serving_color = status.live_color;
            report.image = status.live_image.clone();
            let lock = status.lock.as_ref().map_or("free".to_owned(), |lock| {
                format!("held by {}", lock.holder.describe())
            });
            report.lines.push(format!("Deploy lock: {lock}."));
        }
        ActionCommand::Unlock => {
            let said = crate::app::unlock(ctx, false).await?;
            ctx.printer.stdout(&said);
            report.lines.push(format!("{said}."));
        }
        ActionCommand::Plan => {
            let (lines, verdict) = engine::plan::plan(ctx, &target.image_ref, &target.sha).await;
            for line in &lines {
                ctx.printer.stdout(line);
            }
            report.plan = lines;
            verdict?;
        }
        ActionCommand::Doctor => {
            let checks = engine::doctor::run_checks(ctx).await?;
            report
                .lines
                .extend(checks.iter().map(|check| format!("{}.", check.line())));
            engine::doctor::verdict(&checks)?;
        }
    }
    Ok(())
}

fn record_swap(printer: &Printer, report: &mut Report, summary: Summary) {
    printer.end_phase();
    printer.info(&summary.line());
    if summary.unchanged {
        report.result = RunResult::Unchanged;
    } else {
        report.old = summary.old;
        report.previous_image = Some(summary.previous_image);
        report.health_attempts = Some(summary.health_attempts);
        report.bake = summary.bake.clone();
        report.impact = summary.impact.clone();
    }
    report.new = Some(summary.new);
    report.serving_color = Some(summary.new);
    report.image = Some(summary.image);
}
