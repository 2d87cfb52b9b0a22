//! Runs one subcommand: load settings, connect once, dispatch to the engine, print the result.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::ArgMatches;

use crate::build::artifact;
use crate::engine::{self, Cancel, Ctx, Runtime};
use crate::failure::Failure;
use crate::printer::Printer;
use crate::remote::run_ok;
use crate::remote::ssh::SshHost;
use crate::server::compose::ComposeTool;
use crate::settings::{values, Config, ConfigErrors, Mode, Needs, RawSettings, Sources};

pub async fn run(
    matches: ArgMatches,
    env: BTreeMap<String, String>,
    printer: &Printer,
) -> Result<()> {
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    if name == "init" {
        return crate::init::init(std::path::Path::new("."), printer);
    }
    let action = name == "action";
    let raw = load_raw(sub, env, action)?;
    printer.mask(&raw.secrets());
    for unknown in &raw.unknown_variables {
        printer.warn(unknown);
    }
    let needs = match name {
        "build" => Needs::BuildOnly,
        "deploy" | "ship" | "plan" => Needs::Image,
        "action" => crate::action::ActionCommand::from_env()
            .map_or(Needs::Image, crate::action::ActionCommand::needs),
        _ => Needs::AppOrImage,
    };
    let cancel = Cancel::on_signals();
    let config = check_placeholders(&raw, Config::from_raw(&raw, needs))
        .map_err(|errors| report_config_errors(printer, errors));
    if let Ok(Config {
        mode: Mode::Process(_),
        ..
    }) = &config
    {
        if raw.get("docker_token").is_some() {
            printer.notice(
                "docker_token is set, but process mode uses no registry (run_command is set): ignored",
            );
        }
    }
    if name == "action" {
        return crate::action::run(config, printer, cancel).await;
    }
    let config = config?;
    // Checked before anything connects: a bad `--to` touches nothing.
    let to = engine::rollback::To::parse(
        sub.try_get_one::<String>("to")
            .ok()
            .flatten()
            .map(String::as_str),
        "--to",
    )?;
    // `ship` logs in to the server before the build: a refused key or host key is known in
    // seconds, not after the build; what fails here without a server fails before that.
    let early = match name {
        "ship" => {
            crate::build::preflight(&config)?;
            Some(connect(&config, printer).await?)
        }
        _ => None,
    };
    let built = match name {
        "build" | "ship" => Some(crate::build::build(&config, printer).await?),
        _ => None,
    };
    if let Some(built) = &built {
        printer.info(&format!(
            "built in {:.1}s, pushed in {:.1}s: {}",
            built.build_seconds, built.push_seconds, built.reference
        ));
        if name == "build" {
            printer.end_phase();
            printer.stdout(&built.reference);
            return Ok(());
        }
    }
    let explicit_ref = sub.try_get_one::<String>("image_ref").ok().flatten();
    // Process mode: what deploy, ship and plan upload (a release given by id is on the server).
    let release = match name {
        "deploy" | "ship" | "plan" if explicit_ref.is_none() => artifact::local_release(&config)?,
        _ => None,
    };
    let image_ref = match (&built, explicit_ref, &release) {
        (Some(built), _, _) => built.reference.clone(),
        (None, Some(reference), _) if artifact::release_id(reference).is_some() => {
            reference.clone()
        }
        (None, Some(reference), _) => {
            values::check_image_reference(reference)
                .map_err(|m| Failure::config(format!("--image-ref: {m}")))?;
            reference.clone()
        }
        (None, None, Some(release)) => release.reference(),
        (None, None, None) => format!("{}:{}", config.image, config.environment),
    };

    let github = crate::github::GitHub::from_env(config.github_token.as_ref(), printer.redactor())
        .unwrap_or_else(|error| {
            printer.warn(&format!("GitHub API unavailable: {error:#}"));
            None
        });
    let (host, tool) = match early {
        Some(connected) => connected,
        None => connect(&config, printer).await?,
    };
    // A deploy or rollback asks under the lock, in the round trip that reads the server.
    let asks_under_lock = matches!(name, "deploy" | "ship" | "rollback");
    let choice = match engine::traffic::resolve_unless(asks_under_lock, &host, &config).await {
        Ok(choice) => choice,
        Err(error) => {
            host.close().await;
            return Err(error);
        }
    };
    let config = engine::traffic::resolved(&config, choice.as_ref(), printer).unwrap_or(config);
    let ctx = Ctx {
        config: &config,
        host: &host,
        printer,
        runtime: Runtime::new(&config, tool).with_release(release),
        cancel,
        github: github.as_ref(),
        prefetched: Default::default(),
    };
    let built_sha = built.as_ref().map(|b| b.sha.as_str());
    let result = dispatch(name, sub, &ctx, &image_ref, built_sha, &to).await;
    printer.end_phase();
    host.close().await;
    result
}

/// The one SSH connection of a run, and the compose flavour the server has.
pub async fn connect(config: &Config, printer: &Printer) -> Result<(SshHost, ComposeTool)> {
    printer.phase(&format!(
        "connect to {}@{}:{}",
        config.username, config.host, config.port
    ));
    let host = SshHost::connect(config).await?;
    let tool = detect_compose(config, &host).await?;
    Ok((host, tool))
}

async fn dispatch(
    name: &str,
    sub: &ArgMatches,
    ctx: &Ctx<'_, SshHost>,
    image_ref: &str,
    built_sha: Option<&str>,
    to: &engine::rollback::To,
) -> Result<()> {
    match name {
        "deploy" | "ship" => {
            let force = sub.get_flag("force");
            let summary = match built_sha {
                Some(sha) => engine::deploy::deploy(ctx, image_ref, sha, true, force).await?,
                None => {
                    let sha = commit_sha(ctx.config);
                    engine::deploy::deploy(ctx, image_ref, &sha, false, force).await?
                }
            };
            ctx.printer.end_phase();
            ctx.printer.info(&summary.line());
            ctx.printer.stdout(&summary.image);
        }
        "rollback" => {
            let summary = engine::rollback::rollback_to(ctx, to, "--to").await?;
            ctx.printer.end_phase();
            ctx.printer.info(&summary.line());
        }
        "status" => {
            let status = engine::status::status(ctx).await?;
            if sub.get_flag("json") {
                ctx.printer
                    .stdout_json(&serde_json::to_string_pretty(&status)?);
            } else {
                ctx.printer.stdout(status.human().trim_end_matches('\n'));
            }
        }
        "plan" => {
            let (lines, verdict) =
                engine::plan::plan(ctx, image_ref, &commit_sha(ctx.config)).await;
            for line in lines {
                ctx.printer.stdout(&line);
            }
            verdict?;
        }
        "doctor" => engine::doctor::doctor(ctx).await?,
        "unlock" => ctx
            .printer
            .stdout(&unlock(ctx, sub.get_flag("force")).await?),
        other => unreachable!("unknown subcommand {other}"),
    }
    Ok(())
}

/// Removes the deploy lock of a holder that is gone (or any, with `force`); says who held it.
pub async fn unlock(ctx: &Ctx<'_, SshHost>, force: bool) -> Result<String> {
    engine::unlock::unlock(ctx, force).await
}

fn load_raw(sub: &ArgMatches, env: BTreeMap<String, String>, action: bool) -> Result<RawSettings> {
    let flags = crate::cli::setting_flags(sub);
    crate::cli::refuse_secret_flags(&flags)?;
    let mut sources = Sources {
        flags,
        env,
        read_action_inputs: action,
        file: None,
    };
    let explicit = sub.get_one::<String>("config").map(PathBuf::from);
    sources
        .read_file(explicit.as_deref())
        .map_err(|e| Failure::config(format!("{e:#}")))?;
    RawSettings::gather(&sources).map_err(|e| Failure::config(format!("{e:#}")).into())
}

/// The marker `bluegreen init` writes where only the user knows the value.
const PLACEHOLDER: &str = "REPLACE-ME";

/// Settings that still hold `init`'s placeholder are errors, said first and plainly; other
/// errors name the setting instead of quoting the placeholder (advice to run
/// `ssh-keyscan REPLACE-ME.example.com` helps nobody).
fn check_placeholders(
    raw: &RawSettings,
    loaded: Result<Config, ConfigErrors>,
) -> Result<Config, ConfigErrors> {
    let placeholders: Vec<(&str, &str)> = crate::settings::spec::SETTINGS
        .iter()
        .filter_map(|s| raw.get(s.name).map(|value| (s.name, value)))
        .filter(|(_, value)| value.contains(PLACEHOLDER))
        .collect();
    if placeholders.is_empty() {
        return loaded;
    }
    let mut errors: Vec<String> = placeholders
        .iter()
        .map(|(name, value)| {
            let wanted = match *name {
                "host" => "your server's address",
                "image" => "your image repository (e.g. myorg/app)",
                _ => "its real value",
            };
            format!(
                "{name}: still `{value}`, the placeholder `bluegreen init` wrote; set it to {wanted}"
            )
        })
        .collect();
    let others = loaded.err().map(|e| e.0).unwrap_or_default();
    for error in others {
        let setting = error.split(':').next().unwrap_or_default();
        if placeholders.iter().any(|(name, _)| *name == setting) {
            continue;
        }
        let error = placeholders.iter().fold(error, |error, (name, value)| {
            error.replace(value, &name.to_ascii_uppercase())
        });
        errors.push(error);
    }
    Err(ConfigErrors(errors))
}

fn report_config_errors(printer: &Printer, errors: ConfigErrors) -> anyhow::Error {
    let names: Vec<&str> = errors
        .0
        .iter()
        .filter_map(|p| p.split(':').next())
        .collect();
    if let [problem] = errors.0.as_slice() {
        return Failure::config(format!(
            "invalid setting {problem}; nothing on the server was touched; fix it and run again"
        ))
        .into();
    }
    for problem in &errors.0 {
        printer.info(&format!("- {problem}"));
    }
    Failure::config(format!(
        "invalid settings ({}), each listed above; nothing on the server was touched; fix them \
         and run again",
        names.join(", ")
    ))
    .into()
}

async fn detect_compose(config: &Config, host: &SshHost) -> Result<ComposeTool> {
    if !matches!(config.mode, Mode::Compose(_)) {
        return Ok(ComposeTool::V2);
    }
    let output = run_ok(host, &ComposeTool::detect()).await?;
    ComposeTool::parse(&output.stdout).ok_or_else(|| {
        Failure::deploy(
            "compose_file is set but the server has neither `docker compose` nor `docker-compose`; \
             nothing was changed; install one on the server",
        )
        .into()
    })
}

/// The commit being deployed, for the container's label.
pub fn commit_sha(config: &Config) -> String {
    crate::build::commit_sha(config).unwrap_or_else(|| "unknown".into())
}
