//! Commands of container mode: the tool runs `docker run` for each color itself.

use super::command::{Script, ServerCommand, Stdin};
use crate::color::Color;
use crate::settings::{AppEnv, Config, ContainerMode, Secret};

pub const LABEL_APP: &str = "bluegreen.app";
pub const LABEL_COLOR: &str = "bluegreen.color";
pub const LABEL_IMAGE: &str = "bluegreen.image";
pub const LABEL_SHA: &str = "bluegreen.sha";

pub fn container_name(config: &Config, color: Color) -> String {
    format!("{}-{}", config.app_name, color)
}

/// Inspects the given containers; prints a JSON array of those that exist (missing ones are
/// reported on stderr with a non-zero exit, which readers of this output tolerate).
pub fn inspect(names: &[String]) -> ServerCommand {
    ServerCommand::new(
        "inspect containers",
        &["docker", "inspect", "--type", "container"],
    )
    .args(names.iter().cloned())
    .privileged()
}

/// Logs in with a private, throw-away DOCKER_CONFIG (token on stdin), runs the pull command
/// given as arguments, prints the pulled image's repo digests, removes the credentials.
pub const PULL_SCRIPT: Script = Script {
    name: "bluegreen-pull",
    text: include_str!("docker/pull.sh"),
};

pub fn login_and_pull(
    config: &Config,
    image_ref: &str,
    token: Option<&Secret>,
    pull_argv: Vec<String>,
) -> ServerCommand {
    let (user, stdin) = match (&config.docker_username, token) {
        (Some(user), Some(token)) => (user.as_str(), Stdin::Secret(token.clone())),
        _ => ("", Stdin::None),
    };
    ServerCommand::script(
        format!("pull {image_ref}"),
        &PULL_SCRIPT,
        &[&config.registry, user, image_ref],
    )
    .args(pull_argv)
    .stdin(stdin)
    .privileged()
}

pub fn pull_argv(image_ref: &str) -> Vec<String> {
    vec![
        "docker".into(),
        "pull".into(),
        "--quiet".into(),
        "--".into(),
        image_ref.into(),
    ]
}

pub fn remove(config: &Config, color: Color) -> ServerCommand {
    ServerCommand::new(
        format!("remove old {color} container"),
        &["docker", "rm", "-f"],
    )
    .arg(container_name(config, color))
    .privileged()
}

pub struct RunSpec<'a> {
    pub color: Color,
    pub image_ref: &'a str,
    pub sha: &'a str,
}

pub fn run(config: &Config, mode: &ContainerMode, spec: &RunSpec) -> ServerCommand {
    let name = container_name(config, spec.color);
    let publish = format!(
        "127.0.0.1:{}:{}",
        config.port_of(spec.color),
        mode.container_port
    );
    let mut command = ServerCommand::new(
        format!("start {}", spec.color),
        &["docker", "run", "--detach"],
    )
    .args([
        "--name",
        &name,
        "--restart",
        "unless-stopped",
        "--publish",
        &publish,
    ])
    .args(["--label", &format!("{LABEL_APP}={}", config.app_name)])
    .args(["--label", &format!("{LABEL_COLOR}={}", spec.color)])
    .args(["--label", &format!("{LABEL_IMAGE}={}", spec.image_ref)])
    .args(["--label", &format!("{LABEL_SHA}={}", spec.sha)])
    .args(["--env", &format!("BLUEGREEN_COLOR={}", spec.color)])
    .args(["--env", &format!("BLUEGREEN_IMAGE={}", spec.image_ref)]);
    if let Some(env_file) = &mode.env_file {
        command = command.args(["--env-file", env_file]);
    }
    for (key, value) in &config.app_env.plain {
        command = command.args(["--env", &format!("{key}={value}")]);
    }
    if !config.app_env.secret.is_empty() {
        // The docker client reads the file itself: the secrets travel on stdin, never argv.
        command = command
            .args(["--env-file", "/dev/stdin"])
            .stdin(Stdin::Secret(Secret::new(env_file_text(&config.app_env))));
    }
    command
        .args(mode.run_args.iter().cloned())
        .arg("--")
        .arg(spec.image_ref)
        .privileged()
}

/// `KEY=value` lines as docker's `--env-file` reads them (the value verbatim to the line end).
fn env_file_text(app_env: &AppEnv) -> String {
    app_env
        .secret
        .iter()
        .map(|(key, value)| format!("{key}={}\n", value.expose()))
        .collect()
}

pub fn start(config: &Config, color: Color) -> ServerCommand {
    ServerCommand::new(
        format!("start kept {color} container"),
        &["docker", "start"],
    )
    .arg(container_name(config, color))
    .privileged()
}

/// Stops a container bluegreen did not start (an earlier setup's app), by its name.
pub fn stop_named(name: &str, grace_secs: u64) -> ServerCommand {
    ServerCommand::new(
        format!("stop {name}, started by an earlier setup"),
        &["docker", "stop", "--time"],
    )
    .args([grace_secs.to_string(), name.to_owned()])
    .privileged()
}

/// Frees a color's container name without removing the container.
pub fn rename(name: &str, new_name: &str) -> ServerCommand {
    ServerCommand::new(
        format!("rename {name} to {new_name} (kept)"),
        &["docker", "rename", name, new_name],
    )
    .privileged()
}

pub fn stop(config: &Config, color: Color, grace_secs: u64) -> ServerCommand {
    ServerCommand::new(format!("stop {color}"), &["docker", "stop", "--time"])
        .arg(grace_secs.to_string())
        .arg(container_name(config, color))
        .privileged()
}

pub fn logs(container: &str) -> ServerCommand {
    ServerCommand::new(
        "read container logs",
        &["docker", "logs", "--tail", "30", container],
    )
    .privileged()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Mode;
    use crate::testing::config;

    #[test]
    fn run_command_is_exact() {
        let config = config(&[
            ("image", "myorg/api"),
            ("run_args", "--memory=512m\n--cpus=1"),
            ("env_file", "/srv/api.env"),
        ]);
        let Mode::Container(mode) = &config.mode else {
            panic!()
        };
        let spec = RunSpec {
            color: Color::Green,
            image_ref: "myorg/api@sha256:abc",
            sha: "0123456",
        };
        assert_eq!(
            run(&config, mode, &spec).render(true),
            "sudo -n docker run --detach --name api-green --restart unless-stopped --publish 127.0.0.1:8082:8080 \
             --label bluegreen.app=api --label bluegreen.color=green --label bluegreen.image=myorg/api@sha256:abc \
             --label bluegreen.sha=0123456 --env BLUEGREEN_COLOR=green --env BLUEGREEN_IMAGE=myorg/api@sha256:abc \
             --env-file /srv/api.env --memory=512m --cpus=1 -- myorg/api@sha256:abc"
        );
    }

    #[test]
    fn stop_start_remove_logs() {
        let config = config(&[("image", "myorg/api"), ("stop_timeout", "45s")]);
        assert_eq!(
            stop(&config, Color::Blue, config.stop_timeout.as_secs()).render(false),
            "docker stop --time 45 api-blue"
        );
        assert_eq!(
            start(&config, Color::Blue).render(false),
            "docker start api-blue"
        );
        assert_eq!(
            remove(&config, Color::Green).render(false),
            "docker rm -f api-green"
        );
        assert_eq!(
            logs("api-green").render(false),
            "docker logs --tail 30 api-green"
        );
        assert_eq!(
            inspect(&["api-blue".into(), "api-green".into()]).render(false),
            "docker inspect --type container api-blue api-green"
        );
    }

    #[test]
    fn pull_gives_the_token_on_stdin_only() {
        let config = config(&[
            ("image", "myorg/api"),
            ("docker_username", "bot"),
            ("docker_token", "s3cret"),
        ]);
        let command = login_and_pull(
            &config,
            "myorg/api:dev",
            config.docker_token.as_ref(),
            pull_argv("myorg/api:dev"),
        );
        assert_eq!(
            command.render(false),
            "sh -c <bluegreen-pull> bluegreen-pull docker.io bot myorg/api:dev docker pull --quiet -- myorg/api:dev < (secret on stdin)"
        );
        assert!(!command.argv.iter().any(|a| a.contains("s3cret")));
    }
}
