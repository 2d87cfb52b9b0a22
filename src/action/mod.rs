//! `bluegreen action`: the GitHub Action's entry point. Inputs arrive as `INPUT_*`; secrets are
//! masked before anything else prints; the log is grouped by phase; it runs `ship`, keeps a
//! GitHub Deployment's status current, and always writes the step summary and the outputs.

mod outputs;
mod report;

use std::path::PathBuf;

use anyhow::Result;

use crate::engine::{self, Cancel, Ctx, Runtime};
use crate::failure::Failure;
use crate::github::GitHub;
use crate::printer::Printer;
use crate::settings::Config;
use report::Report;

/// What the runner tells us through the environment.
struct Runner {
    output: Option<PathBuf>,
    summary: Option<PathBuf>,
    run_url: Option<String>,
}

impl Runner {
    fn read() -> Runner {
        let path = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let run_url = crate::github::run_url_from_env();
        Runner {
            output: path("GITHUB_OUTPUT"),
            summary: path("GITHUB_STEP_SUMMARY"),
            run_url,
        }
    }
}

pub async fn run(config: Result<Config>, printer: &Printer, cancel: Cancel) -> Result<()> {
    let runner = Runner::read();
    let mut report = Report {
        run_url: runner.run_url.clone(),
        ..Report::default()
    };
    let outcome = match config {
        Ok(config) => run_with(&config, printer, cancel, &runner, &mut report).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &outcome {
        report.failure = Some(format!("{error:#}"));
        if let Some(failure) = error.downcast_ref::<Failure>() {
            report.failure = Some(failure.message.clone());
            report.serving = failure.serving.clone();
            report.logs = failure.logs.clone();
        }
    }
    write_files(&runner, &report, printer);
    outcome
}

async fn run_with(
    config: &Config,
    printer: &Printer,
    cancel: Cancel,
    runner: &Runner,
    report: &mut Report,
) -> Result<()> {
    report.environment = config.environment.clone();
    report.app_name = config.app_name.clone();
    report.commit = crate::build::commit_sha(config).unwrap_or_default();
    let github = match GitHub::from_env(config.github_token.as_ref()) {
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
    };
    let deployment = match (&github, config.deployment) {
        (Some(github), true) => start_deployment(github, config, report, runner, printer).await,
        _ => None,
    };
    let outcome = ship(config, printer, cancel, github.as_ref(), report).await;
    if let (Some(github), Some(id)) = (&github, deployment) {
        let (state, description) = match &outcome {
            Ok(()) => (
                "success",
                format!(
                    "{} serves {}",
                    report.new.map_or("-".into(), |c| c.to_string()),
                    report.image.as_deref().unwrap_or("")
                ),
            ),
            Err(error) => ("failure", format!("{error:#}")),
        };
        if let Err(error) = github
            .set_status(id, state, runner.run_url.as_deref(), &description)
            .await
        {
            printer.warn(&format!("{error:#}; the deploy itself is not affected"));
        }
    }
    outcome
}

async fn start_deployment(
    github: &GitHub,
    config: &Config,
    report: &Report,
    runner: &Runner,
    printer: &Printer,
) -> Option<u64> {
    let created = async {
        let id = github
            .create_deployment(&report.commit, &config.environment)
            .await?;
        github
            .set_status(
                id,
                "in_progress",
                runner.run_url.as_deref(),
                "bluegreen deploy in progress",
            )
            .await?;
        anyhow::Ok(id)
    }
    .await;
    match created {
        Ok(id) => {
            printer.info(&format!(
                "GitHub deployment {id} for {} is in progress",
                config.environment
            ));
            Some(id)
        }
        Err(error) => {
            printer.warn(&format!("{error:#}; deploying without a GitHub deployment"));
            None
        }
    }
}

async fn ship(
    config: &Config,
    printer: &Printer,
    cancel: Cancel,
    github: Option<&GitHub>,
    report: &mut Report,
) -> Result<()> {
    let built = tokio::select! {
        built = crate::build::build(config, printer) => built?,
        _ = cancel.cancelled() => return Err(Failure::deploy("cancelled during the build; nothing was pushed or deployed").into()),
    };
    report.phases.push(("build", built.build_seconds));
    report.phases.push(("push", built.push_seconds));
    report.image = Some(built.reference.clone());
    let release = crate::build::artifact::local_release(config)?;
    let (host, tool) = crate::app::connect(config, printer).await?;
    let ctx = Ctx {
        config,
        host: &host,
        printer,
        runtime: Runtime::new(config, tool).with_release(release),
        cancel,
        github,
    };
    let deployed = engine::deploy::deploy(&ctx, &built.reference, &built.sha, true, false).await;
    printer.end_phase();
    host.close().await;
    let summary = deployed?;
    printer.info(&summary.line());
    let t = &summary.timings;
    report.phases.extend([
        ("lock wait", t.lock_wait),
        ("pull", t.pull),
        ("start", t.start),
        ("health", t.health),
        ("switch", t.switch),
        ("verify", t.verify),
        ("drain", t.drain),
        ("stop old", t.stop),
    ]);
    report.old = summary.old;
    report.new = Some(summary.new);
    report.health_attempts = Some(summary.health_attempts);
    report.round_trips = Some(summary.round_trips);
    report.image = Some(summary.image);
    Ok(())
}

fn write_files(runner: &Runner, report: &Report, printer: &Printer) {
    if let Some(path) = &runner.summary {
        let text = printer.redact(&report::render_summary(report));
        if let Err(error) = outputs::append(path, &text) {
            printer.warn(&format!("writing the step summary failed: {error:#}"));
        }
    }
    if let Some(path) = &runner.output {
        let mut values = vec![("sha", report.commit.clone())];
        if report.failure.is_none() {
            let color =
                |c: Option<crate::color::Color>| c.map(|c| c.to_string()).unwrap_or_default();
            values.extend([
                ("color", color(report.new)),
                ("previous_color", color(report.old)),
                ("image", report.image.clone().unwrap_or_default()),
                ("digest", report.digest().unwrap_or_default().to_owned()),
            ]);
        }
        let delimiter = outputs::delimiter(&values);
        if let Err(error) = outputs::append(path, &outputs::render(&values, &delimiter)) {
            printer.warn(&format!("writing the outputs failed: {error:#}"));
        }
    }
}
