//! Process mode on the server: releases uploaded into `state_dir/releases/{id}/`, and each
//! color run by a pid-file supervisor — the operator's `run_command` started with `setsid` in
//! its own process group (it outlives the SSH session), its pid in `{color}.pid`, its release in
//! `{color}.release`, its output in `{color}.log`. No Docker, no sudo: the SSH user runs the app.

use super::command::{Script, ServerCommand, Stdin};
use crate::color::Color;
use crate::settings::{AppEnv, Secret};

/// How many releases stay on the server (the live one and the rollback target always do).
pub const KEEP_RELEASES: usize = 3;

/// `present` when release `$2` is on the server (and marks it recently used), else `absent`.
pub const PRESENT_SCRIPT: Script = Script {
    name: "bluegreen-release-present",
    text: include_str!("process/release_present.sh"),
};

/// Writes stdin to `releases/$2/$3` (via a temporary name), then removes all but the newest
/// `$4` releases, never one named in the further arguments.
pub const UPLOAD_SCRIPT: Script = Script {
    name: "bluegreen-upload-release",
    text: include_str!("process/upload.sh"),
};

/// Starts color `$2` on port `$3` from release `$4` with the rendered run_command `$5`;
/// `KEY=VALUE` lines on stdin are exported first (secrets never reach argv).
pub const START_SCRIPT: Script = Script {
    name: "bluegreen-start-process",
    text: include_str!("process/start.sh"),
};

/// SIGTERM to color `$2`'s process group, SIGKILL after `$3` tenths of a second; a zombie
/// counts as exited. With `$4` = `forget` its release marker and kept environment go too (the
/// color is removed).
/// Both it and the status script start with the shell function `alive PGID` (process/alive.sh):
/// true while a process of the group runs (zombies do not count).
pub const STOP_SCRIPT: Script = Script {
    name: "bluegreen-stop-color",
    text: concat!(
        include_str!("process/alive.sh"),
        include_str!("process/stop.sh")
    ),
};

/// One line per color: `COLOR PID running|exited|none RELEASE RESTARTS LAST-EXIT-CODE` (`-` when
/// unknown).
pub const STATUS_SCRIPT: Script = Script {
    name: "bluegreen-process-status",
    text: concat!(
        include_str!("process/alive.sh"),
        include_str!("process/status.sh")
    ),
};

/// The last lines a color's process printed.
pub const LOGS_SCRIPT: Script = Script {
    name: "bluegreen-process-logs",
    text: include_str!("process/logs.sh"),
};

pub fn release_present(state_dir: &str, id: &str) -> ServerCommand {
    ServerCommand::script(
        format!("check whether release {id} is on the server"),
        &PRESENT_SCRIPT,
        &[state_dir, id],
    )
}

/// Uploads the artifact; `keep`: releases that must stay (what the colors run now).
pub fn upload(
    state_dir: &str,
    id: &str,
    file_name: &str,
    bytes: Vec<u8>,
    keep: &[String],
) -> ServerCommand {
    let count = KEEP_RELEASES.to_string();
    let mut args = vec![state_dir, id, file_name, count.as_str()];
    args.extend(keep.iter().map(String::as_str));
    ServerCommand::script(format!("upload release {id}"), &UPLOAD_SCRIPT, &args)
        .stdin(Stdin::Bytes(bytes))
}

/// The operator's run_command with its placeholders filled: `{port}` and `{color}` are plain
/// words; `{artifact}` becomes `"$BLUEGREEN_ARTIFACT"`, set by the start script, so no path
/// is pasted into the command text.
pub fn render_run_command(run_command: &str, color: Color, port: u16) -> String {
    run_command
        .replace("{port}", &port.to_string())
        .replace("{color}", &color.to_string())
        .replace("{artifact}", "\"$BLUEGREEN_ARTIFACT\"")
}

pub fn start(
    state_dir: &str,
    color: Color,
    port: u16,
    id: &str,
    run_command: &str,
    app_env: &AppEnv,
) -> ServerCommand {
    let port_text = port.to_string();
    let run = render_run_command(run_command, color, port);
    let color_text = color.to_string();
    let command = ServerCommand::script(
        format!("start {color}"),
        &START_SCRIPT,
        &[state_dir, &color_text, &port_text, id, &run],
    );
    let lines: String = app_env
        .plain
        .iter()
        .map(|(key, value)| format!("{key}={value}\n"))
        .chain(
            app_env
                .secret
                .iter()
                .map(|(key, value)| format!("{key}={}\n", value.expose())),
        )
        .collect();
    match (lines.is_empty(), app_env.secret.is_empty()) {
        (true, _) => command,
        (false, true) => command.stdin(Stdin::Text(lines)),
        (false, false) => command.stdin(Stdin::Secret(Secret::new(lines))),
    }
}

/// Stops a color (SIGTERM, SIGKILL after `grace_secs`); `forget`: also drops its release
/// marker, so the color counts as removed.
pub fn stop(state_dir: &str, color: Color, grace_secs: u64, forget: bool) -> ServerCommand {
    let tenths = (grace_secs * 10).max(1).to_string();
    let color_text = color.to_string();
    let purpose = if forget {
        format!("remove {color}")
    } else {
        format!("stop {color}")
    };
    let mut args = vec![state_dir, color_text.as_str(), tenths.as_str()];
    if forget {
        args.push("forget");
    }
    ServerCommand::script(purpose, &STOP_SCRIPT, &args)
}

pub fn status(state_dir: &str) -> ServerCommand {
    ServerCommand::script("read the colors' processes", &STATUS_SCRIPT, &[state_dir])
}

pub fn logs(state_dir: &str, color: Color) -> ServerCommand {
    ServerCommand::script(
        format!("read {color}'s log"),
        &LOGS_SCRIPT,
        &[state_dir, &color.to_string()],
    )
}

/// One color's process as the status script reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ColorProcess {
    pub color: Color,
    pub pid: u32,
    pub running: bool,
    /// `exited` or `running`, or `none` (never started since its last stop).
    pub state: String,
    pub release: Option<String>,
    /// How often the supervisor restarted the command since the color started, and the
    /// command's last exit code.
    pub restarts: u64,
    pub last_exit_code: i64,
}

pub fn parse_status(output: &str) -> Vec<ColorProcess> {
    output
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (color, pid, state, release, restarts) = match words.as_slice() {
                [color, pid, state, release, restarts @ ..] => {
                    (*color, *pid, *state, *release, restarts)
                }
                _ => return None,
            };
            let number = |at: usize| restarts.get(at).and_then(|n| n.parse().ok()).unwrap_or(0);
            let color = Color::BOTH.into_iter().find(|c| c.to_string() == color)?;
            let restarted = number(0) as u64;
            let running = state == "running";
            Some(ColorProcess {
                color,
                pid: pid.parse().unwrap_or(0),
                running,
                state: if running && restarted > 0 {
                    "restarting".to_owned()
                } else {
                    state.to_owned()
                },
                release: (release != "-").then(|| release.to_owned()),
                restarts: restarted,
                last_exit_code: number(1),
            })
        })
        .filter(|p| p.pid != 0 || p.release.is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_the_artifact_stays_a_variable() {
        assert_eq!(
            render_run_command(
                "java -jar {artifact} --server.port={port} # {color}",
                Color::Green,
                8082
            ),
            "java -jar \"$BLUEGREEN_ARTIFACT\" --server.port=8082 # green"
        );
    }

    #[test]
    fn commands_are_exact_and_secrets_stay_off_argv() {
        let app_env = AppEnv {
            plain: vec![("MODE".into(), "prod".into())],
            secret: vec![("DB_PASSWORD".into(), Secret::new("hunter2"))],
        };
        let start = start(
            "~/.bluegreen/shop",
            Color::Blue,
            8081,
            "0123abcd4567",
            "java -jar {artifact}",
            &app_env,
        );
        assert_eq!(
            start.render(true),
            "sh -c <bluegreen-start-process> bluegreen-start-process '~/.bluegreen/shop' blue 8081 \
             0123abcd4567 'java -jar \"$BLUEGREEN_ARTIFACT\"' < (secret on stdin)"
        );
        assert!(!start.argv.iter().any(|a| a.contains("hunter2")));
        let upload = upload(
            "/srv/s",
            "0123abcd4567",
            "app.jar",
            vec![1, 2, 3],
            &["aaaa".into()],
        );
        assert_eq!(
            upload.render(true),
            "sh -c <bluegreen-upload-release> bluegreen-upload-release /srv/s 0123abcd4567 app.jar 3 aaaa < (3 bytes)"
        );
        assert_eq!(
            stop("/srv/s", Color::Green, 30, true).render(true),
            "sh -c <bluegreen-stop-color> bluegreen-stop-color /srv/s green 300 forget"
        );
    }

    #[test]
    fn status_lines_are_parsed() {
        let found = parse_status("blue 4242 running 0123abcd4567\ngreen - none -\n");
        assert_eq!(
            found,
            vec![ColorProcess {
                color: Color::Blue,
                pid: 4242,
                running: true,
                state: "running".into(),
                release: Some("0123abcd4567".into()),
                restarts: 0,
                last_exit_code: 0,
            }]
        );
        let exited = parse_status("green 77 exited 89ab\n");
        assert!(!exited[0].running && exited[0].release.as_deref() == Some("89ab"));
        // The supervisor restarted a crashed command twice, last with exit code 3.
        let crashed = parse_status("green 78 running 89ab 2 3\n");
        assert_eq!(
            (
                crashed[0].state.as_str(),
                crashed[0].restarts,
                crashed[0].last_exit_code
            ),
            ("restarting", 2, 3)
        );
    }
}
