//! docker build / login / push as values: tags `{environment}` and `{environment}-{sha7}`,
//! OCI labels, the token on stdin into a private DOCKER_CONFIG.

use std::path::Path;

use super::local::LocalCommand;
use crate::server::Stdin;
use crate::settings::{Config, Secret};

pub struct Tags {
    pub moving: String,
    pub immutable: String,
}

pub fn tags(config: &Config, sha: &str) -> Tags {
    let sha7: String = sha.chars().take(7).collect();
    Tags {
        moving: format!("{}:{}", config.image, config.environment),
        immutable: format!("{}:{}-{sha7}", config.image, config.environment),
    }
}

pub struct Labels<'a> {
    pub revision: &'a str,
    pub source: Option<&'a str>,
    pub created: &'a str,
}

/// `docker_config`: the private DOCKER_CONFIG holding the registry login, so a private `FROM`
/// base can be pulled by the build.
pub fn build(
    config: &Config,
    tags: &Tags,
    labels: &Labels,
    buildx: bool,
    docker_config: Option<&Path>,
) -> LocalCommand {
    let context = config.context.display().to_string();
    let dockerfile = config
        .context
        .join(&config.dockerfile)
        .display()
        .to_string();
    let mut command = if buildx {
        LocalCommand::new("build the image", &["docker", "buildx", "build", "--load"])
    } else {
        LocalCommand::new("build the image", &["docker", "build"]).env("DOCKER_BUILDKIT", "0")
    };
    if let Some(docker_config) = docker_config {
        command = command.env("DOCKER_CONFIG", docker_config.display().to_string());
    }
    command = command
        .args(["--platform", &config.platform, "--file", &dockerfile])
        .args(["--tag", &tags.moving, "--tag", &tags.immutable])
        .args([
            "--label",
            &format!("org.opencontainers.image.revision={}", labels.revision),
        ])
        .args([
            "--label",
            &format!("org.opencontainers.image.created={}", labels.created),
        ]);
    if let Some(source) = labels.source {
        command = command.args([
            "--label",
            &format!("org.opencontainers.image.source={source}"),
        ]);
    }
    for arg in &config.build_args {
        command = command.args(["--build-arg", arg]);
    }
    command.args([context])
}

pub fn login(docker_config: &Path, registry: &str, user: &str, token: &Secret) -> LocalCommand {
    LocalCommand::new(
        format!("log in to {registry}"),
        &[
            "docker",
            "login",
            "--username",
            user,
            "--password-stdin",
            registry,
        ],
    )
    .env("DOCKER_CONFIG", docker_config.display().to_string())
    .stdin(Stdin::Secret(token.clone()))
}

pub fn push(docker_config: &Path, tag: &str) -> LocalCommand {
    LocalCommand::new(format!("push {tag}"), &["docker", "push", tag])
        .env("DOCKER_CONFIG", docker_config.display().to_string())
}

pub fn repo_digests(tag: &str) -> LocalCommand {
    LocalCommand::new(
        "read the pushed digest",
        &[
            "docker",
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            tag,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    #[test]
    fn build_command_is_exact() {
        let config = config(&[
            ("image", "myorg/api"),
            ("environment", "prod"),
            ("context", "/src"),
            ("build_args", "A=1\nB=two words"),
        ]);
        let tags = tags(&config, "0123456789abcdef");
        assert_eq!(tags.immutable, "myorg/api:prod-0123456");
        let labels = Labels {
            revision: "0123456789abcdef",
            source: Some("https://github.com/o/r"),
            created: "2026-11-22T00:00:00Z",
        };
        assert_eq!(
            build(&config, &tags, &labels, false, None).render(),
            "DOCKER_BUILDKIT=0 docker build --platform linux/amd64 --file /src/Dockerfile --tag myorg/api:prod \
             --tag myorg/api:prod-0123456 --label org.opencontainers.image.revision=0123456789abcdef \
             --label org.opencontainers.image.created=2026-11-22T00:00:00Z \
             --label org.opencontainers.image.source=https://github.com/o/r --build-arg A=1 --build-arg 'B=two words' /src"
        );
        assert!(build(&config, &tags, &labels, true, None)
            .render()
            .starts_with("docker buildx build --load --platform"));
        // Logged in: the build reads the same private DOCKER_CONFIG (a private FROM base).
        assert!(
            build(&config, &tags, &labels, true, Some(Path::new("/tmp/cfg")))
                .render()
                .starts_with("DOCKER_CONFIG=/tmp/cfg docker buildx build --load --platform")
        );
    }

    #[test]
    fn login_takes_the_token_on_stdin() {
        let command = login(
            Path::new("/tmp/cfg"),
            "docker.io",
            "bot",
            &Secret::new("s3cret"),
        );
        assert_eq!(
            command.render(),
            "DOCKER_CONFIG=/tmp/cfg docker login --username bot --password-stdin docker.io < (secret on stdin)"
        );
    }
}
