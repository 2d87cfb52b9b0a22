//! Commands of compose mode: colors are services of the operator's compose file.
//! Every compose command carries `BLUEGREEN_IMAGE` and `BLUEGREEN_COLOR` in its environment.

use super::command::{quote, Script, ServerCommand, Stdin};
use crate::color::Color;
use crate::settings::{AppEnv, ComposeMode, Secret};

/// `docker compose` (v2 plugin) or `docker-compose` (v1), whichever the server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposeTool {
    V2,
    V1,
}

impl ComposeTool {
    /// Prints `v2`, `v1` or `none` (see [`DETECT_SCRIPT`]).
    pub fn detect() -> ServerCommand {
        ServerCommand::script("detect docker compose", &DETECT_SCRIPT, &[]).privileged()
    }

    pub fn parse(output: &str) -> Option<ComposeTool> {
        match output.trim() {
            "v2" => Some(ComposeTool::V2),
            "v1" => Some(ComposeTool::V1),
            _ => None,
        }
    }
}

/// Prints `v2` (the `docker compose` plugin), `v1` (`docker-compose`) or `none`.
pub const DETECT_SCRIPT: Script = Script {
    name: "bluegreen-detect-compose",
    text: include_str!("compose/detect.sh"),
};

/// Exports the `KEY='value'` lines on stdin, then runs its arguments.
pub const SECRET_ENV_SCRIPT: Script = Script {
    name: "bluegreen-secret-env",
    text: include_str!("compose/with_secret_env.sh"),
};

pub struct Compose<'a> {
    pub mode: &'a ComposeMode,
    pub tool: ComposeTool,
    /// `env` values join `BLUEGREEN_*` in every compose command's environment; `secret_env`
    /// only reaches `up`, through stdin (a compose file passes them on with
    /// `environment: [KEY]`).
    pub app_env: &'a AppEnv,
}

impl Compose<'_> {
    pub fn service(&self, color: Color) -> &str {
        match color {
            Color::Blue => &self.mode.blue_service,
            Color::Green => &self.mode.green_service,
        }
    }

    /// `env BLUEGREEN_IMAGE=… BLUEGREEN_COLOR=… docker compose -f FILE [-p P]` as argv.
    pub fn base_argv(&self, image_ref: &str, color: Color) -> Vec<String> {
        let mut argv = vec![
            "env".to_owned(),
            format!("BLUEGREEN_IMAGE={image_ref}"),
            format!("BLUEGREEN_COLOR={color}"),
        ];
        argv.extend(self.app_env.plain.iter().map(|(k, v)| format!("{k}={v}")));
        match self.tool {
            ComposeTool::V2 => argv.extend(["docker".to_owned(), "compose".to_owned()]),
            ComposeTool::V1 => argv.push("docker-compose".to_owned()),
        }
        argv.extend(["-f".to_owned(), self.mode.file.clone()]);
        if let Some(project) = &self.mode.project {
            argv.extend(["-p".to_owned(), project.clone()]);
        }
        argv
    }

    fn command(
        &self,
        purpose: String,
        image_ref: &str,
        color: Color,
        tail: &[&str],
    ) -> ServerCommand {
        let mut argv = self.base_argv(image_ref, color);
        argv.extend(tail.iter().map(|s| s.to_string()));
        ServerCommand::new(purpose, &[]).args(argv).privileged()
    }

    pub fn pull_argv(&self, image_ref: &str, color: Color) -> Vec<String> {
        let mut argv = self.base_argv(image_ref, color);
        argv.extend(["pull".to_owned(), self.service(color).to_owned()]);
        argv
    }

    pub fn up(&self, image_ref: &str, color: Color) -> ServerCommand {
        let service = self.service(color);
        let up = self.command(
            format!("start {color}"),
            image_ref,
            color,
            &["up", "-d", "--no-deps", "--force-recreate", service],
        );
        if self.app_env.secret.is_empty() {
            return up;
        }
        // Secrets are exported from stdin by a fixed script, then the same argv runs.
        let mut command = ServerCommand::script(up.purpose.clone(), &SECRET_ENV_SCRIPT, &[]);
        command.argv.extend(up.argv);
        let exports: String = self
            .app_env
            .secret
            .iter()
            .map(|(key, value)| format!("{key}={}\n", quote(value.expose())))
            .collect();
        command
            .stdin(Stdin::Secret(Secret::new(exports)))
            .privileged()
    }

    pub fn start(&self, image_ref: &str, color: Color) -> ServerCommand {
        self.command(
            format!("start kept {color} service"),
            image_ref,
            color,
            &["start", self.service(color)],
        )
    }

    pub fn stop(&self, image_ref: &str, color: Color, stop_timeout_secs: u64) -> ServerCommand {
        let timeout = stop_timeout_secs.to_string();
        self.command(
            format!("stop {color}"),
            image_ref,
            color,
            &["stop", "-t", &timeout, self.service(color)],
        )
    }

    pub fn remove(&self, image_ref: &str, color: Color) -> ServerCommand {
        self.command(
            format!("remove {color}"),
            image_ref,
            color,
            &["rm", "-f", "-s", self.service(color)],
        )
    }

    /// Container ids of both services, stopped ones included.
    pub fn container_ids(&self) -> ServerCommand {
        let mut tail = vec!["ps", "-q"];
        if self.tool == ComposeTool::V2 {
            tail.push("-a");
        }
        tail.extend([
            self.mode.blue_service.as_str(),
            self.mode.green_service.as_str(),
        ]);
        self.command("list compose containers".to_owned(), "", Color::Blue, &tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory for PATH with this machine's `sh` and `env`, and stand-ins (`NAME`, script
    /// text) for the commands a script calls.
    fn path_with(stand_ins: &[(&str, &str)]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let bin = crate::testing::path_with_only(&["sh", "env", "cat"]);
        for (name, text) in stand_ins {
            let path = bin.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{text}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bin
    }

    /// The real detect script, with stand-ins for `docker` and `docker-compose`: the plugin
    /// wins, then v1, else none.
    #[test]
    fn the_detect_script_names_the_compose_the_server_has() {
        let detect = |stand_ins: &[(&str, &str)]| {
            let path = path_with(stand_ins);
            let output = crate::testing::run_here(&ComposeTool::detect(), Some(path.path()));
            ComposeTool::parse(&output)
        };
        let plugin = "[ \"$1 $2\" = \"compose version\" ]";
        assert_eq!(
            detect(&[("docker", plugin), ("docker-compose", "true")]),
            Some(ComposeTool::V2)
        );
        let no_plugin = "echo \"docker: 'compose' is not a docker command\" >&2; exit 1";
        assert_eq!(
            detect(&[("docker", no_plugin), ("docker-compose", "true")]),
            Some(ComposeTool::V1)
        );
        assert_eq!(detect(&[("docker", no_plugin)]), None);
    }

    /// The real secret-env script runs the exact `up` argv with each secret exported from
    /// stdin (quotes and all), never on argv: a stand-in `docker` prints what it received.
    #[test]
    fn the_secret_env_script_gives_compose_the_secrets_from_stdin() {
        let mode = mode();
        let app_env = AppEnv {
            plain: vec![("SPRING_PROFILES_ACTIVE".into(), "prod".into())],
            secret: vec![("DB_PASSWORD".into(), Secret::new("it's $3cret \"x\""))],
        };
        let compose = Compose {
            mode: &mode,
            tool: ComposeTool::V2,
            app_env: &app_env,
        };
        let path = path_with(&[(
            "docker",
            "printf '%s|%s|%s\\n' \"$DB_PASSWORD\" \"$SPRING_PROFILES_ACTIVE $BLUEGREEN_COLOR\" \"$*\"",
        )]);
        let output = crate::testing::run_here(
            &compose.up("r/app@sha256:ab", Color::Green),
            Some(path.path()),
        );
        assert_eq!(
            output,
            "it's $3cret \"x\"|prod green|compose -f /srv/app/docker-compose.yml -p shop up -d \
             --no-deps --force-recreate green\n"
        );
    }

    fn mode() -> ComposeMode {
        ComposeMode {
            file: "/srv/app/docker-compose.yml".into(),
            project: Some("shop".into()),
            blue_service: "blue".into(),
            green_service: "green".into(),
        }
    }

    #[test]
    fn v1_commands_are_exact() {
        let mode = mode();
        let app_env = AppEnv::default();
        let compose = Compose {
            mode: &mode,
            tool: ComposeTool::V1,
            app_env: &app_env,
        };
        assert_eq!(
            compose.up("r/app@sha256:ab", Color::Green).render(true),
            "sudo -n env BLUEGREEN_IMAGE=r/app@sha256:ab BLUEGREEN_COLOR=green docker-compose \
             -f /srv/app/docker-compose.yml -p shop up -d --no-deps --force-recreate green"
        );
        assert_eq!(
            compose.stop("r/app:dev", Color::Blue, 30).render(false),
            "env BLUEGREEN_IMAGE=r/app:dev BLUEGREEN_COLOR=blue docker-compose -f /srv/app/docker-compose.yml -p shop stop -t 30 blue"
        );
        assert_eq!(
            compose.container_ids().render(false),
            "env BLUEGREEN_IMAGE= BLUEGREEN_COLOR=blue docker-compose -f /srv/app/docker-compose.yml -p shop ps -q blue green"
        );
    }

    #[test]
    fn v2_uses_the_plugin_and_lists_stopped_containers() {
        let mode = mode();
        let app_env = AppEnv::default();
        let compose = Compose {
            mode: &mode,
            tool: ComposeTool::V2,
            app_env: &app_env,
        };
        assert_eq!(
            compose.pull_argv("r/app:dev", Color::Blue).join(" "),
            "env BLUEGREEN_IMAGE=r/app:dev BLUEGREEN_COLOR=blue docker compose -f /srv/app/docker-compose.yml -p shop pull blue"
        );
        assert!(compose
            .container_ids()
            .render(false)
            .ends_with("ps -q -a blue green"));
        assert_eq!(ComposeTool::parse("v1\n"), Some(ComposeTool::V1));
        assert_eq!(ComposeTool::parse("none\n"), None);
    }

    #[test]
    fn secrets_reach_compose_on_stdin_only() {
        let mode = mode();
        let app_env = AppEnv {
            plain: vec![("SPRING_PROFILES_ACTIVE".into(), "prod".into())],
            secret: vec![("DB_PASSWORD".into(), Secret::new("it's s3cret"))],
        };
        let compose = Compose {
            mode: &mode,
            tool: ComposeTool::V2,
            app_env: &app_env,
        };
        let up = compose.up("r/app@sha256:ab", Color::Green);
        assert_eq!(
            up.render(false),
            "sh -c <bluegreen-secret-env> bluegreen-secret-env env BLUEGREEN_IMAGE=r/app@sha256:ab \
             BLUEGREEN_COLOR=green SPRING_PROFILES_ACTIVE=prod docker compose -f \
             /srv/app/docker-compose.yml -p shop up -d --no-deps --force-recreate green < (secret on stdin)"
        );
        assert!(!up.argv.iter().any(|a| a.contains("s3cret")));
        assert_eq!(
            up.stdin,
            Stdin::Secret(Secret::new("DB_PASSWORD='it'\\''s s3cret'\n"))
        );
    }
}
