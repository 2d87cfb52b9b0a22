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
            Mode::Compose(mode) => Runtime::Compose(Compose { mode, tool }),
        }
    }

    pub fn describe(&self, config: &Config, color: Color) -> String {
        match self {
            Runtime::Container(_) => format!("container {}", docker::container_name(config, color)),
            Runtime::Compose(compose) => format!("service {}", compose.service(color)),
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

    /// Commands that start a fresh container of `image_ref` as `color`. `exists`: a container of
    /// that color is there (stopped or not) and must be replaced first.
    pub fn start_new(&self, config: &Config, spec: &RunSpec, exists: bool) -> Vec<ServerCommand> {
        match self {
            Runtime::Container(mode) => {
                let mut commands = Vec::new();
                if exists {
                    commands.push(docker::remove(config, spec.color));
                }
                commands.push(docker::run(config, mode, spec));
                commands
            }
            Runtime::Compose(compose) => vec![compose.up(spec.image_ref, spec.color)],
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
        let mut commands = match self {
            Runtime::Container(_) => vec![docker::stop(config, color)],
            Runtime::Compose(compose) => {
                vec![compose.stop(image_ref, color, config.stop_timeout.as_secs())]
            }
        };
        if !config.keep_old {
            commands.push(match self {
                Runtime::Container(_) => docker::remove(config, color),
                Runtime::Compose(compose) => compose.remove(image_ref, color),
            });
        }
        commands
    }
}
