//! The three ways colors run — containers the tool starts itself, compose services, or plain
//! processes from an uploaded release — behind one set of command builders, so the runbook
//! does not care which.

use crate::build::artifact::{release_id, Release};
use crate::color::Color;
use crate::server::compose::{Compose, ComposeTool};
use crate::server::docker::{self, RunSpec};
use crate::server::process;
use crate::server::ServerCommand;
use crate::settings::{Config, ContainerMode, Mode, ProcessMode};

pub enum Runtime<'a> {
    Container(&'a ContainerMode),
    Compose(Compose<'a>),
    Process(ProcessRuntime<'a>),
}

/// Process mode: the run_command, and the local release a deploy uploads (none for the
/// commands that upload nothing: status, rollback, unlock).
pub struct ProcessRuntime<'a> {
    pub mode: &'a ProcessMode,
    pub release: Option<Release>,
}

impl ProcessRuntime<'_> {
    /// Puts release `reference` on the server: a presence check, then (when the local
    /// artifact is that release) its upload, which runs only when the check says `absent`.
    /// `keep`: releases that must survive the pruning.
    pub fn put_release(
        &self,
        config: &Config,
        reference: &str,
        keep: &[String],
    ) -> Vec<ServerCommand> {
        let id = release_id(reference).unwrap_or(reference);
        let mut commands = vec![process::release_present(&config.state_dir, id)];
        if let Some(release) = self.release.as_ref().filter(|r| r.id == id) {
            commands.push(process::upload(
                &config.state_dir,
                id,
                &release.file_name,
                release.bytes.clone(),
                keep,
            ));
        }
        commands
    }
}

/// The release id a color runs, from its reference (`release:ID`).
fn id_of(image_ref: &str) -> &str {
    release_id(image_ref).unwrap_or(image_ref)
}

impl<'a> Runtime<'a> {
    /// `tool` is the detected compose flavour (ignored in container mode).
    pub fn new(config: &'a Config, tool: ComposeTool) -> Runtime<'a> {
        match &config.mode {
            Mode::Container(mode) => Runtime::Container(mode),
            Mode::Compose(mode) => Runtime::Compose(Compose {
                mode,
                tool,
                app_env: &config.app_env,
            }),
            Mode::Process(mode) => Runtime::Process(ProcessRuntime {
                mode,
                release: None,
            }),
        }
    }

    /// The same runtime for another `config` (the one with `traffic_switch: auto` resolved).
    pub fn rebind<'b>(&self, config: &'b Config) -> Runtime<'b> {
        let tool = match self {
            Runtime::Compose(compose) => compose.tool,
            _ => ComposeTool::V2,
        };
        let release = match self {
            Runtime::Process(process) => process.release.clone(),
            _ => None,
        };
        Runtime::new(config, tool).with_release(release)
    }

    /// Process mode: the local release a deploy uploads.
    pub fn with_release(mut self, release: Option<Release>) -> Self {
        if let Runtime::Process(process) = &mut self {
            process.release = release;
        }
        self
    }

    pub fn describe(&self, config: &Config, color: Color) -> String {
        match self {
            Runtime::Container(_) => format!("container {}", docker::container_name(config, color)),
            Runtime::Compose(compose) => format!("service {}", compose.service(color)),
            Runtime::Process(_) => format!("{color}'s process"),
        }
    }

    /// What `{container}` means in a hook: the container's name, or the compose service.
    pub fn container_or_service(&self, config: &Config, color: Color) -> String {
        match self {
            Runtime::Container(_) => docker::container_name(config, color),
            Runtime::Compose(compose) => compose.service(color).to_owned(),
            Runtime::Process(_) => format!("{}-{color}", config.app_name),
        }
    }

    pub fn service(&self, color: Color) -> String {
        match self {
            Runtime::Container(_) | Runtime::Process(_) => color.to_string(),
            Runtime::Compose(compose) => compose.service(color).to_owned(),
        }
    }

    pub fn pull(&self, config: &Config, image_ref: &str, color: Color) -> ServerCommand {
        let argv = match self {
            Runtime::Container(_) | Runtime::Process(_) => docker::pull_argv(image_ref),
            Runtime::Compose(compose) => compose.pull_argv(image_ref, color),
        };
        docker::login_and_pull(config, image_ref, config.docker_token.as_ref(), argv)
    }

    /// Commands that start a fresh container of `image_ref` as `color` (its name is free).
    pub fn start_new(&self, config: &Config, spec: &RunSpec) -> Vec<ServerCommand> {
        match self {
            Runtime::Container(mode) => vec![docker::run(config, mode, spec)],
            Runtime::Compose(compose) => vec![compose.up(spec.image_ref, spec.color)],
            Runtime::Process(process) => vec![process::start(
                &config.state_dir,
                spec.color,
                config.port_of(spec.color),
                id_of(spec.image_ref),
                &process.mode.run_command,
                &config.app_env,
            )],
        }
    }

    /// Removes a color's container (stopped or not).
    pub fn remove(&self, config: &Config, color: Color, image_ref: &str) -> ServerCommand {
        match self {
            Runtime::Container(_) => docker::remove(config, color),
            Runtime::Compose(compose) => compose.remove(image_ref, color),
            Runtime::Process(_) => process::stop(&config.state_dir, color, 1, true),
        }
    }

    pub fn start_kept(&self, config: &Config, color: Color, image_ref: &str) -> ServerCommand {
        match self {
            Runtime::Container(_) => docker::start(config, color),
            Runtime::Compose(compose) => compose.start(image_ref, color),
            Runtime::Process(process) => process::start(
                &config.state_dir,
                color,
                config.port_of(color),
                id_of(image_ref),
                &process.mode.run_command,
                &config.app_env,
            ),
        }
    }

    /// Stops a color; with `keep_old: false` also removes it.
    pub fn stop(&self, config: &Config, color: Color, image_ref: &str) -> Vec<ServerCommand> {
        self.stop_within(config, color, image_ref, config.stop_timeout.as_secs())
    }

    /// [`Runtime::stop`] with its own grace period (a cancelled run has seconds left).
    pub fn stop_within(
        &self,
        config: &Config,
        color: Color,
        image_ref: &str,
        grace_secs: u64,
    ) -> Vec<ServerCommand> {
        let mut commands = match self {
            Runtime::Container(_) => vec![docker::stop(config, color, grace_secs)],
            Runtime::Compose(compose) => vec![compose.stop(image_ref, color, grace_secs)],
            Runtime::Process(_) => vec![process::stop(&config.state_dir, color, grace_secs, false)],
        };
        if !config.keep_old {
            commands.push(self.remove(config, color, image_ref));
        }
        commands
    }
}
