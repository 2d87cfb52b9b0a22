//! The two ways colors run — containers the tool starts itself, or compose services — behind
//! one set of command builders, so the runbook does not care which.

use crate::color::Color;
use crate::server::compose::{Compose, ComposeTool};
use crate::server::docker::{self, RunSpec};
use crate::server::ServerCommand;
use crate::settings::{Config, ContainerMode, Mode};

pub enum Runtime<'a> {
    Container(&'a ContainerMode),
    Compose(Compose<'a>),
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
        }
    }

    pub fn describe(&self, config: &Config, color: Color) -> String {
        match self {
            Runtime::Container(_) => format!("container {}", docker::container_name(config, color)),
            Runtime::Compose(compose) => format!("service {}", compose.service(color)),
        }
    }

    /// What `{container}` means in a hook: the container's name, or the compose service.
    pub fn container_or_service(&self, config: &Config, color: Color) -> String {
        match self {
            Runtime::Container(_) => docker::container_name(config, color),
            Runtime::Compose(compose) => compose.service(color).to_owned(),
        }
    }

    pub fn service(&self, color: Color) -> String {
        match self {
            Runtime::Container(_) => color.to_string(),
            Runtime::Compose(compose) => compose.service(color).to_owned(),
        }
    }

    pub fn pull(&self, config: &Config, image_ref: &str, color: Color) -> ServerCommand {
        let argv = match self {
            Runtime::Container(_) => docker::pull_argv(image_ref),
            Runtime::Compose(compose) => compose.pull_argv(image_ref, color),
        };
        docker::login_and_pull(config, image_ref, config.docker_token.as_ref(), argv)
    }

    /// Commands that start a fresh container of `image_ref` as `color` (its name is free).
    pub fn start_new(&self, config: &Config, spec: &RunSpec) -> Vec<ServerCommand> {
        match self {
            Runtime::Container(mode) => vec![docker::run(config, mode, spec)],
            Runtime::Compose(compose) => vec![compose.up(spec.image_ref, spec.color)],
        }
    }

    /// Removes a color's container (stopped or not).
    pub fn remove(&self, config: &Config, color: Color, image_ref: &str) -> ServerCommand {
        match self {
            Runtime::Container(_) => docker::remove(config, color),
            Runtime::Compose(compose) => compose.remove(image_ref, color),
        }
    }

    pub fn start_kept(&self, config: &Config, color: Color, image_ref: &str) -> ServerCommand {
        match self {
            Runtime::Container(_) => docker::start(config, color),
            Runtime::Compose(compose) => compose.start(image_ref, color),
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
        };
        if !config.keep_old {
            commands.push(self.remove(config, color, image_ref));
        }
        commands
    }
}
