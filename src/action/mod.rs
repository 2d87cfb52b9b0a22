//! `bluegreen action`: the GitHub Action's entry point. Inputs arrive as `INPUT_*`; secrets are
//! masked before anything else prints; the log is grouped by phase; it runs the `command`
//! input (`ship` by default), keeps a GitHub Deployment's status current, and writes the step
//! summary and every output on every exit.

mod command;
mod deployment;
mod outputs;
mod report;
mod steps;

use std::path::PathBuf;

use anyhow::Result;

pub use command::ActionCommand;
use deployment::Deployment;
use report::{Report, RunResult};

use crate::engine::Cancel;
use crate::failure::Failure;
use crate::github::GitHub;
use crate::printer::Printer;
use crate::settings::Config;

/// What the runner tells us through the environment.
pub struct Runner {
    output: Option<PathBuf>,
    summary: Option<PathBuf>,
    run_url: Option<String>,
    repository_url: Option<String>,
}

impl Runner {
    fn read() -> Runner {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let repository_url = match (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
            (Some(server), Some(repository)) => Some(format!("{server}/{repository}")),
            _ => None,
        };
        Runner {
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            run_url: crate::github::run_url_from_env(),
            repository_url,
        }
    }
}

pub async fn run(config: Result<Config>, printer: &Printer, cancel: Cancel) -> Result<()> {
    let runner = Runner::read();
    let command = ActionCommand::from_env();
    let mut report = Report {
        command: command
            .as_ref()
            .map_or("ship", |command| command.name())
            .to_owned(),
        run_url: runner.run_url.clone(),
        repository_url: runner.repository_url.clone(),
        ..Report::default()
    };
    let outcome = match (command, config) {
        (Err(error), _) => Err(error.into()),
        (Ok(_), Err(error)) => Err(error),
        (Ok(command), Ok(config)) => {
            run_with(command, &config, printer, &cancel, &runner, &mut report).await
        }
    };
    // Again for the errors before `run_with` (it is idempotent).
    settle(&mut report, &outcome, &cancel);
    write_files(&runner, &mut report, printer);
    outcome
}

async fn run_with(
    command: ActionCommand,
    config: &Config,
    printer: &Printer,
    cancel: &Cancel,
    runner: &Runner,
    report: &mut Report,
) -> Result<()> {
    report.environment = config.environment.clone();
    if command == ActionCommand::Rollback {
        // Checked before anything connects: a bad `to` touches nothing.
        rollback_to()?;
    } else if std::env::var("INPUT_TO").is_ok_and(|to| !to.trim().is_empty()) {
        printer.warn(&format!(
            "the `to` input is for `command: rollback` only; ignored by `{}`",
            command.name()
        ));
    }
    if command.deploys() || command == ActionCommand::Plan {
        report.commit = crate::build::commit_sha(config).unwrap_or_default();
    }
    let github = github_client(config, printer, report);
    let deployment = match (&github, command.deploys() && config.deployment) {
        (Some(github), true) => {
            Deployment::start(github, config, &report.commit, runner, printer).await
        }
        _ => None,
    };
    let outcome = steps::run(command, config, printer, cancel, github.as_ref(), report).await;
    settle(report, &outcome, cancel);
    if let Some(deployment) = deployment {
        deployment.finish(config, report, printer).await;
    }
    let restored = matches!(report.result, RunResult::Success | RunResult::Unchanged);
    if let (Some(github), ActionCommand::Rollback, true, true) =
        (&github, command, config.deployment, restored)
    {
        deployment::record_rollback(github, config, report, printer).await;
    }
    outcome
}

/// The `to` input of `command: rollback` (as `rollback --to`): empty means the previous color.
pub(crate) fn rollback_to() -> Result<crate::engine::rollback::To, Failure> {
    let text = std::env::var("INPUT_TO").ok();
    crate::engine::rollback::To::parse(text.as_deref(), "the `to` input")
}

fn github_client(config: &Config, printer: &Printer, report: &mut Report) -> Option<GitHub> {
    match GitHub::from_env(config.github_token.as_ref(), printer.redactor()) {
        Ok(Some(github)) => Some(github),
        Ok(None) => {
            let notice = "no github_token (or no GITHUB_REPOSITORY): GitHub Deployments, the run-aware lock and the older-commit check are skipped";
            printer.notice(notice);
            report.notices.push(notice.to_owned());
            None
        }
        Err(error) => {
            printer.warn(&format!("GitHub API unavailable: {error:#}"));
            None
        }
    }
}

/// The run's result from its outcome: a signal makes a failure `cancelled`.
fn settle(report: &mut Report, outcome: &Result<()>, cancel: &Cancel) {
    let Err(error) = outcome else {
        if report.result != RunResult::Unchanged {
            report.result = RunResult::Success;
        }
        return;
    };
    report.result = if cancel.is_cancelled() {
        RunResult::Cancelled
    } else {
        RunResult::Failure
    };
    report.exit_code = Some(crate::failure::exit_code(error));
    report.failure = Some(format!("{error:#}"));
    if let Some(failure) = error.downcast_ref::<Failure>() {
        report.failure = Some(failure.message.clone());
        report.serving = failure.serving.clone();
        report.serving_color = failure.serving_color;
        report.logs = failure.logs.clone();
        report.impact = failure.impact.as_deref().cloned();
    }
}

fn write_files(runner: &Runner, report: &mut Report, printer: &Printer) {
    let (phases, total) = printer.timings();
    report.phases = phases
        .into_iter()
        .map(|(name, took)| (name, took.as_secs_f64()))
        .collect();
    report.total_seconds = total.as_secs_f64();
    if let Some(path) = &runner.summary {
        let text = printer.redact(&report::render_summary(report));
        if let Err(error) = outputs::append(path, &text) {
            printer.warn(&format!("writing the step summary failed: {error:#}"));
        }
    }
    if let Some(path) = &runner.output {
        let values: Vec<(&str, String)> = outputs::values(report)
            .into_iter()
            .map(|(name, value)| (name, printer.redact(&value)))
            .collect();
        let delimiter = outputs::delimiter(&values);
        if let Err(error) = outputs::append(path, &outputs::render(&values, &delimiter)) {
            printer.warn(&format!("writing the outputs failed: {error:#}"));
        }
    }
}
