//! Process mode on the server: releases uploaded into `state_dir/releases/{id}/`, and each
//! color run by a pid-file supervisor — the operator's `run_command` started with `setsid` in
//! its own process group (it outlives the SSH session), its pid in `{color}.pid`, its release in
//! `{color}.release`, its output in `{color}.log`. No Docker, no sudo: the SSH user runs the app.
//!
//! A pid alone proves nothing (the kernel reuses it after a crash or a reboot), so the pid file
//! also records the supervisor's start time and the boot id, and the supervisor carries a marker
//! in its environment (process/identity.sh): a group that fails the check is never signalled
//! and counts as not running.

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
/// `KEY=VALUE` lines on stdin are exported first (secrets never reach argv). The pid file gets
/// `PID START BOOT` (see process/identity.sh).
pub const START_SCRIPT: Script = Script {
    name: "bluegreen-start-process",
    text: concat!(
        include_str!("process/identity.sh"),
        include_str!("process/start.sh")
    ),
};

/// SIGTERM to color `$2`'s process group, SIGKILL after `$3` tenths of a second; a zombie
/// counts as exited. Only a group proven to be the color's (`owned`, process/identity.sh) is
/// signalled; the pid file goes either way. With `$4` = `forget` its release marker and kept
/// environment go too (the color is removed). `alive PGID` (process/alive.sh): true while a
/// process of the group runs (zombies do not count).
pub const STOP_SCRIPT: Script = Script {
    name: "bluegreen-stop-color",
    text: concat!(
        include_str!("process/alive.sh"),
        include_str!("process/identity.sh"),
        include_str!("process/stop.sh")
    ),
};

/// One line per color: `COLOR PID running|exited|none RELEASE RESTARTS LAST-EXIT-CODE` (`-` when
/// unknown). A pid file that fails the identity check is `exited` with no pid, and is removed.
pub const STATUS_SCRIPT: Script = Script {
    name: "bluegreen-process-status",
    text: concat!(
        include_str!("process/identity.sh"),
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

    /// Whether a process of group `pgid` runs (zombies do not count), read from /proc.
    fn group_runs(pgid: u32) -> bool {
        std::fs::read_dir("/proc").unwrap().any(|entry| {
            let stat =
                std::fs::read_to_string(entry.unwrap().path().join("stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map(|(_, rest)| rest.split(' ').collect())
                .unwrap_or_default();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
    }

    /// A state dir holding release `id` (uploaded by the real upload script).
    fn state_with_release(id: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().to_str().unwrap();
        let output = crate::testing::run_here(
            &upload(state_dir, id, "app.txt", b"artifact".to_vec(), &[]),
            None,
        );
        assert_eq!(output, "uploaded\n");
        dir
    }

    fn status_line(state_dir: &str, color: Color) -> String {
        let output = crate::testing::run_here(&status(state_dir), None);
        output
            .lines()
            .find(|line| line.starts_with(color.as_str()))
            .unwrap_or_else(|| panic!("no {color} in {output:?}"))
            .to_owned()
    }

    /// The real scripts, here: start runs the command in a process group of its own with the
    /// color, port, artifact and environment it is given, and writes its pid and release;
    /// status reports it running; logs shows what it printed; stop ends the whole group
    /// (supervisor and app) with SIGTERM, removes the pid file, and status then says `none`.
    #[test]
    fn the_process_scripts_start_report_log_and_stop_a_color() {
        let dir = state_with_release("r1");
        let state_dir = dir.path().to_str().unwrap();
        let app_env = AppEnv {
            plain: vec![("GREETING".into(), "hello".into())],
            secret: vec![("TOKEN".into(), Secret::new("s3cret"))],
        };
        let run = "echo \"up {color} {port} $GREETING $TOKEN $(cat {artifact})\"; exec sleep 600";
        let started = crate::testing::run_here(
            &start(state_dir, Color::Blue, 18081, "r1", run, &app_env),
            None,
        );
        let pid = crate::testing::started_pid(&started);
        let _group = crate::testing::Group(pid);
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        // `PID START BOOT`: the supervisor's pid, its start time and the boot id.
        assert_eq!(
            read("blue.pid").split_whitespace().next(),
            Some(&*pid.to_string())
        );
        assert_eq!(read("blue.release"), "r1\n");
        // setsid makes the group a moment after start returns.
        crate::testing::wait_for("the color's process group", || group_runs(pid));
        assert_eq!(
            status_line(state_dir, Color::Blue),
            format!("blue {pid} running r1 0 0")
        );
        assert_eq!(status_line(state_dir, Color::Green), "green - none - 0 0");
        let expected = "up blue 18081 hello s3cret artifact\n";
        crate::testing::wait_for("the app's first line in its log", || {
            crate::testing::run_here(&logs(state_dir, Color::Blue), None) == expected
        });
        let stopped = crate::testing::run_here(&stop(state_dir, Color::Blue, 60, false), None);
        assert_eq!(stopped, "stopped\n");
        assert!(
            !group_runs(pid),
            "a process of the color's group still runs"
        );
        assert!(!dir.path().join("blue.pid").exists());
        assert_eq!(
            read("blue.release"),
            "r1\n",
            "a stop keeps the release marker"
        );
        assert_eq!(status_line(state_dir, Color::Blue), "blue - none r1 0 0");
        let again = crate::testing::run_here(&stop(state_dir, Color::Blue, 60, true), None);
        assert_eq!(again, "not running\n");
        assert!(
            !dir.path().join("blue.release").exists(),
            "forget removes it"
        );
    }

    /// An app that ignores SIGTERM is killed once the grace time is over.
    #[test]
    fn the_stop_script_kills_a_color_that_ignores_term() {
        let dir = state_with_release("r1");
        let state_dir = dir.path().to_str().unwrap();
        let run = "trap '' TERM; echo ignoring; sleep 600";
        let started = crate::testing::run_here(
            &start(
                state_dir,
                Color::Green,
                18082,
                "r1",
                run,
                &AppEnv::default(),
            ),
            None,
        );
        let pid = crate::testing::started_pid(&started);
        let _group = crate::testing::Group(pid);
        crate::testing::wait_for("the app to ignore SIGTERM", || {
            crate::testing::run_here(&logs(state_dir, Color::Green), None) == "ignoring\n"
        });
        let stopped = crate::testing::run_here(&stop(state_dir, Color::Green, 1, false), None);
        assert_eq!(stopped, "killed\n");
        crate::testing::wait_for("the killed group to be gone", || !group_runs(pid));
    }

    /// The real upload and presence scripts, here: the artifact lands under its release, and
    /// only the newest releases stay (r2 goes), plus those the colors still run (r1).
    #[test]
    fn the_upload_script_keeps_the_newest_and_the_named_releases() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().to_str().unwrap();
        let run = |command: ServerCommand| crate::testing::run_here(&command, None);
        assert_eq!(run(release_present(state_dir, "r1")), "absent\n");
        for (age, id) in ["r1", "r2", "r3", "r4"].iter().enumerate() {
            let keep = ["r1".to_owned()];
            run(upload(
                state_dir,
                id,
                "app.jar",
                id.as_bytes().to_vec(),
                &keep,
            ));
            // Ages set by hand: uploads in one second may share a modification time.
            let status = std::process::Command::new("touch")
                .args(["-d", &format!("{} minutes ago", 10 - age)])
                .arg(dir.path().join("releases").join(id))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let output = run(upload(
            state_dir,
            "r5",
            "app.jar",
            b"five".to_vec(),
            &["r1".into()],
        ));
        assert_eq!(output, "uploaded\n");
        let mut kept: Vec<String> = std::fs::read_dir(dir.path().join("releases"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        kept.sort();
        assert_eq!(kept, ["r1", "r3", "r4", "r5"]);
        let artifact = dir.path().join("releases/r5/app.jar");
        assert_eq!(std::fs::read(artifact).unwrap(), b"five");
        assert!(!dir.path().join("releases/r5/.upload").exists());
        assert_eq!(run(release_present(state_dir, "r1")), "present\n");
        assert_eq!(run(release_present(state_dir, "r2")), "absent\n");
    }

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

    /// A process this test starts in its own group, killed when the test ends.
    struct Unrelated(std::process::Child);

    impl Unrelated {
        fn start() -> Unrelated {
            use std::os::unix::process::CommandExt;
            let child = std::process::Command::new("sleep")
                .arg("300")
                .process_group(0)
                .spawn()
                .unwrap();
            Unrelated(child)
        }

        fn running(&mut self) -> bool {
            self.0.try_wait().unwrap().is_none()
        }
    }

    impl Drop for Unrelated {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn status_of(dir: &str, color: Color) -> Option<ColorProcess> {
        parse_status(&crate::testing::run_here(&status(dir), None))
            .into_iter()
            .find(|p| p.color == color)
    }

    /// A stale pid file (the pid reused after a crash or a reboot) names a live process this
    /// bluegreen never started, even with that process's own start time and this boot's id:
    /// the real status script says not running and removes the file; the stop script signals
    /// nothing. Both fail without the identity check (status said running; stop killed it).
    #[test]
    fn a_stale_pid_file_naming_an_unrelated_process_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap();
        let mut unrelated = Unrelated::start();
        let pid = unrelated.0.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let start = stat
            .rsplit(") ")
            .next()
            .unwrap()
            .split(' ')
            .nth(19)
            .unwrap();
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let pid_file = dir.path().join("green.pid");
        for content in [format!("{pid}\n"), format!("{pid} {start} {}", boot.trim())] {
            std::fs::write(&pid_file, &content).unwrap();
            let found = status_of(state, Color::Green);
            assert!(
                found.as_ref().is_none_or(|p| !p.running && p.pid == 0),
                "{found:?}"
            );
            assert!(!pid_file.exists(), "the stale pid file stays: {content}");

            std::fs::write(&pid_file, &content).unwrap();
            let stopped = crate::testing::run_here(&stop(state, Color::Green, 1, true), None);
            assert_eq!(stopped.trim(), "not running");
            assert!(
                unrelated.running(),
                "{content}: the unrelated process was signalled"
            );
            assert!(!pid_file.exists());
        }
    }

    /// Both colors' pid files name blue's supervisor (the trial: removing the idle
    /// color killed the live app): removing green leaves blue running; stopping blue stops it.
    #[test]
    fn a_pid_file_naming_the_other_colors_group_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap();
        std::fs::create_dir_all(dir.path().join("releases/r1")).unwrap();
        std::fs::write(dir.path().join("releases/r1/app.jar"), "jar").unwrap();
        let started = crate::testing::run_here(
            &start(
                state,
                Color::Blue,
                1,
                "r1",
                "exec sleep 300",
                &AppEnv::default(),
            ),
            None,
        );
        let blue = status_of(state, Color::Blue).expect("blue's status");
        let mut group = KillGroup(blue.pid);
        assert!(blue.running && started.trim() == format!("started {}", blue.pid));
        std::fs::copy(dir.path().join("blue.pid"), dir.path().join("green.pid")).unwrap();
        assert!(!status_of(state, Color::Green).is_some_and(|p| p.running));

        std::fs::copy(dir.path().join("blue.pid"), dir.path().join("green.pid")).unwrap();
        let removed = crate::testing::run_here(&stop(state, Color::Green, 1, true), None);
        assert_eq!(removed.trim(), "not running");
        assert!(status_of(state, Color::Blue).is_some_and(|p| p.running && p.pid == blue.pid));

        let stopped = crate::testing::run_here(&stop(state, Color::Blue, 50, true), None);
        assert_eq!(stopped.trim(), "stopped");
        group.0 = 0;
        assert!(!group_runs(blue.pid), "blue's group runs on");
    }

    /// Kills a process group this test started when the test fails before stopping it
    /// (0: stopped, nothing to do).
    struct KillGroup(u32);

    impl Drop for KillGroup {
        fn drop(&mut self) {
            if self.0 > 0 {
                unsafe { libc::kill(-(self.0 as i32), libc::SIGKILL) };
            }
        }
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
