//! `bluegreen build`: jar → image → login → push; returns the pushed `repo@sha256:…`.

pub mod artifact;
mod image;
pub mod jar;
pub mod local;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::failure::Failure;
use crate::printer::Printer;
use crate::settings::Config;
use local::{run, LocalCommand};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub reference: String,
    pub tags: Vec<String>,
    pub sha: String,
    pub build_seconds: f64,
    pub push_seconds: f64,
}

/// `docker login` into the private `docker_config` when a user and token are set; `false`: the
/// machine's own docker credentials are used.
async fn log_in(config: &Config, printer: &Printer, docker_config: &Path) -> Result<bool> {
    let (Some(user), Some(token)) = (&config.docker_username, &config.docker_token) else {
        printer.notice(
            "no docker_username/docker_token: building and pushing with the machine's existing docker credentials",
        );
        return Ok(false);
    };
    printer.phase(&format!("log in to {}", config.registry));
    link_cli_plugins(docker_config);
    let login = image::login(docker_config, &config.registry, user, token);
    printer.info(&login.render());
    run(printer, &login).await.map_err(|e| {
        Failure::deploy(format!(
            "docker login to {} as {user} failed: {e:#}; nothing was built, pushed or deployed; check docker_username and docker_token",
            config.registry
        ))
    })?;
    Ok(true)
}

/// A private DOCKER_CONFIG hides the user's `~/.docker/cli-plugins` (buildx may live there).
fn link_cli_plugins(docker_config: &Path) {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let plugins = Path::new(&home).join(".docker/cli-plugins");
    if plugins.is_dir() {
        // Best effort: without it docker falls back to the system-wide plugin directories.
        let _best_effort = std::os::unix::fs::symlink(&plugins, docker_config.join("cli-plugins"));
    }
}

/// GITHUB_SHA, else `git rev-parse HEAD` in the context; a build needs one.
pub fn commit_sha(config: &Config) -> Option<String> {
    if let Some(sha) = std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()) {
        return Some(sha);
    }
    git(config, &["rev-parse", "HEAD"])
}

fn source_url(config: &Config) -> Option<String> {
    if let (Ok(server), Ok(repo)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        return Some(format!("{server}/{repo}"));
    }
    git(config, &["remote", "get-url", "origin"])
}

/// The trimmed output of a successful git command in the context, if it printed anything.
fn git(config: &Config, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(&config.context)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn has_buildx() -> bool {
    std::process::Command::new("docker")
        .args(["buildx", "version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What would fail here, after a connection or a minutes-long jar build, fails first: no
/// commit to label the image with, a missing Dockerfile. Returns the commit.
pub fn preflight(config: &Config) -> Result<String> {
    let sha = commit_sha(config).ok_or_else(|| {
        Failure::config(format!(
            "cannot tell which commit is built: {} is not in a git checkout with a commit and \
             GITHUB_SHA is not set; nothing was built or deployed; run it in a git checkout \
             (after the first commit) or set GITHUB_SHA",
            config.context.display()
        ))
    })?;
    let process_mode = matches!(config.mode, crate::settings::Mode::Process(_));
    let dockerfile = config.context.join(&config.dockerfile);
    if !process_mode && !dockerfile.is_file() {
        return Err(Failure::config(format!(
            "dockerfile: {} does not exist (context {}, dockerfile {}); nothing was built, pushed or \
             deployed; fix context/dockerfile, or see `bluegreen init` for a Dockerfile",
            dockerfile.display(),
            config.context.display(),
            config.dockerfile
        ))
        .into());
    }
    Ok(sha)
}

pub async fn build(config: &Config, printer: &Printer) -> Result<Built> {
    let sha = preflight(config)?;
    let process_mode = matches!(config.mode, crate::settings::Mode::Process(_));
    let failed = |error: anyhow::Error| -> anyhow::Error {
        let Some(command) = error.downcast_ref::<local::Failed>() else {
            return Failure::deploy(format!("{error:#}; nothing was pushed or deployed")).into();
        };
        command.show_tail(printer);
        Failure::deploy(format!(
            "{command}; nothing was pushed or deployed; its last output lines are above"
        ))
        .into()
    };

    // Holds the registry login: private (0700/0600), removed at the end. Logged in before the
    // builds, so a refused token is known at once and a `FROM` on a private base works.
    let docker_config = crate::remote::private_dir::PrivateDir::create("docker")?;
    let logged_in = if process_mode {
        false
    } else {
        log_in(config, printer, docker_config.path()).await?
    };

    let started = Instant::now();
    match jar::jar_command(&config.context, &config.build_command) {
        Some(command) => {
            printer.phase("build the jar");
            printer.info(&command.render());
            run(printer, &command).await.map_err(failed)?;
        }
        None => printer
            .notice("no jar build (build_command is none, or no gradlew/mvnw/pom.xml in context)"),
    }
    if let Some(release) = artifact::local_release(config)? {
        // Process mode: the jar is the release; no image, no registry.
        printer.info(&format!(
            "{} ({} bytes) is {}",
            release.file_name,
            release.bytes.len(),
            release.reference()
        ));
        return Ok(Built {
            reference: release.reference(),
            tags: Vec::new(),
            sha,
            build_seconds: started.elapsed().as_secs_f64(),
            push_seconds: 0.0,
        });
    }

    let login = logged_in.then_some(docker_config.path());

    printer.phase("build the image");
    let tags = image::tags(config, &sha);
    let created = crate::engine::record::now();
    let source = source_url(config);
    let labels = image::Labels {
        revision: &sha,
        source: source.as_deref(),
        created: &created,
    };
    let command = image::build(config, &tags, &labels, has_buildx(), login);
    printer.info(&command.render());
    run(printer, &command).await.map_err(failed)?;
    let build_seconds = started.elapsed().as_secs_f64();

    printer.phase(&format!("push to {}", config.registry));
    let started = Instant::now();
    for tag in [&tags.moving, &tags.immutable] {
        let mut push: LocalCommand = image::push(docker_config.path(), tag);
        if !logged_in {
            push.env.clear();
        }
        run(printer, &push).await.map_err(failed)?;
    }
    let digests = run(printer, &image::repo_digests(&tags.immutable))
        .await
        .map_err(failed)?;
    let reference = crate::engine::deploy::pinned_reference(&tags.immutable, &digests);
    if !reference.contains("@sha256:") {
        return Err(failed(anyhow::anyhow!(
            "the registry reported no digest for {}",
            tags.immutable
        )));
    }
    let push_seconds = started.elapsed().as_secs_f64();
    printer.info(&format!(
        "pushed {} and {} as {reference}",
        tags.moving, tags.immutable
    ));
    Ok(Built {
        reference,
        tags: vec![tags.moving, tags.immutable],
        sha,
        build_seconds,
        push_seconds,
    })
}
