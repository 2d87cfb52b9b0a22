//! `bluegreen action` run directly with the runner's environment: settings as `INPUT_*`, the
//! GITHUB_* context, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files (the published image run
//! exactly as the runner runs it is in `action_runner`). The GitHub API is a local fake.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::github::FakeGitHub;
use crate::support::runner::{keep_summary, stable};
use crate::support::{shared, Run, Site, REGISTRY_TOKEN};

const SHA_OLD: &str = "1111111111111111111111111111111111111111";
const SHA_NEW: &str = "2222222222222222222222222222222222222222";

struct ActionRun {
    run: Run,
    outputs: String,
    summary: String,
}

/// A workspace with the demo app's sources, and the action's environment for `site`
/// (settings as INPUT_*, the GITHUB_* context), as the runner would give them.
fn action_env(
    site: &Site,
    github: &FakeGitHub,
    sha: &str,
    run_id: &str,
    version: &str,
) -> (PathBuf, Vec<(String, String)>) {
    let workspace = site.dir.join(format!("workspace-{run_id}-{}", &sha[..4]));
    std::fs::create_dir_all(&workspace).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-app");
    for file in ["Dockerfile", "app.sh"] {
        std::fs::copy(fixture.join(file), workspace.join(file)).unwrap();
    }
    std::fs::copy("/bin/busybox", workspace.join("busybox")).unwrap();
    let mut env: Vec<(String, String)> = site
        .env
        .iter()
        .filter(|(key, _)| key != "BLUEGREEN_KEY_FILE")
        .filter_map(|(key, value)| {
            key.strip_prefix("BLUEGREEN_")
                .map(|name| (format!("INPUT_{name}"), value.clone()))
        })
        .collect();
    let key = std::fs::read_to_string(&shared().user_key).unwrap();
    let pairs = [
        ("INPUT_KEY", key),
        (
            "INPUT_IMAGE",
            format!("{}/action/{}", shared().registry, site.app),
        ),
        ("INPUT_BUILD_COMMAND", "none".into()),
        ("INPUT_BUILD_ARGS", format!("VERSION={version}")),
        ("INPUT_ENVIRONMENT", "dev".into()),
        ("INPUT_GITHUB_TOKEN", "ghs_faketoken1234567890".into()),
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_SHA", sha.into()),
        ("GITHUB_REPOSITORY", "o/r".into()),
        ("GITHUB_SERVER_URL", "https://github.com".into()),
        ("GITHUB_RUN_ID", run_id.into()),
        ("GITHUB_ACTOR", "octocat".into()),
        ("GITHUB_API_URL", github.uri()),
    ];
    env.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    (workspace, env)
}

/// The binary run directly with the action's environment.
pub(crate) fn action_command(
    site: &Site,
    github: &FakeGitHub,
    sha: &str,
    run_id: &str,
    version: &str,
) -> (Command, PathBuf, PathBuf) {
    let (workspace, env) = action_env(site, github, sha, run_id, version);
    let (outputs, summary) = (
        workspace.join("github_output"),
        workspace.join("step_summary"),
    );
    let mut command = Command::new(crate::support::binary());
    command.arg("action").current_dir(&workspace).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    command
        .envs(env)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary);
    (command, outputs, summary)
}

fn run_action(
    site: &Site,
    github: &FakeGitHub,
    sha: &str,
    run_id: &str,
    version: &str,
) -> ActionRun {
    let (mut command, outputs, summary) = action_command(site, github, sha, run_id, version);
    let run = Run::from(command.output().unwrap());
    ActionRun {
        run,
        outputs: std::fs::read_to_string(outputs).unwrap_or_default(),
        summary: std::fs::read_to_string(summary).unwrap_or_default(),
    }
}

pub(crate) fn output(outputs: &str, name: &str) -> Option<String> {
    let mut lines = outputs.lines();
    while let Some(line) = lines.next() {
        if let Some(delimiter) = line.strip_prefix(&format!("{name}<<")) {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            return Some(value.join("\n"));
        }
    }
    None
}

/// Every `::endgroup::` closes a `::group::` opened before it, and each group is closed: the
/// log must not start with an `::endgroup::` (it did, before any group).
pub(crate) fn assert_groups_pair(log: &str) {
    let marks: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("::group::") || *l == "::endgroup::")
        .map(|l| if l == "::endgroup::" { "end" } else { "group" })
        .collect();
    let pairs = marks.chunks(2).all(|pair| pair == ["group", "end"]);
    assert!(pairs && !marks.is_empty(), "{marks:?}\n{log}");
}

#[test]
fn the_action_ships_writes_outputs_summary_and_deployment_statuses() {
    let site = Site::new("action");
    let github = FakeGitHub::start("ahead");
    let first = run_action(&site, &github, SHA_OLD, "100", "a1");
    first.run.success();
    let log = format!("{}{}", first.run.stdout, first.run.stderr);
    // Masks come before anything else; no secret appears anywhere.
    let first_line = first.run.stderr.lines().next().unwrap();
    assert!(first_line.starts_with("::add-mask::"), "{first_line}");
    let key_line = std::fs::read_to_string(&shared().user_key)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    for secret in [REGISTRY_TOKEN, "ghs_faketoken1234567890", key_line.as_str()] {
        assert!(
            first.run.stderr.contains(&format!("::add-mask::{secret}")),
            "{secret} is not masked"
        );
        let after_masks: String = log
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!after_masks.contains(secret), "a secret reached the log");
        assert!(!first.summary.contains(secret) && !first.outputs.contains(secret));
    }
    assert!(
        log.contains("::group::build the image") && log.contains("::endgroup::"),
        "{log}"
    );
    assert_groups_pair(&first.run.stderr);
    assert_eq!(output(&first.outputs, "color").as_deref(), Some("blue"));
    assert_eq!(
        output(&first.outputs, "previous_color").as_deref(),
        Some("")
    );
    assert_eq!(output(&first.outputs, "sha").as_deref(), Some(SHA_OLD));
    let image = output(&first.outputs, "image").unwrap();
    let digest = output(&first.outputs, "digest").unwrap();
    assert!(
        image.ends_with(&format!("@{digest}")) && digest.starts_with("sha256:"),
        "{image} {digest}"
    );
    assert_eq!(site.served(), Some(("a1".into(), "blue".into())));

    let second = run_action(&site, &github, SHA_NEW, "101", "a2");
    second.run.success();
    assert_eq!(output(&second.outputs, "color").as_deref(), Some("green"));
    assert_eq!(
        output(&second.outputs, "previous_color").as_deref(),
        Some("blue")
    );
    assert_eq!(site.served(), Some(("a2".into(), "green".into())));
    keep_summary("action_summary_success", &second.summary);
    insta::assert_snapshot!("action_summary_success", stable(&second.summary, &site));

    // Deployment statuses: in_progress then success, with the run's log URL.
    let statuses: Vec<(String, Option<String>)> = github
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/statuses"))
        .map(|(_, _, body)| {
            (
                body["state"].as_str().unwrap_or("").to_owned(),
                body["log_url"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        statuses.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["in_progress", "success", "in_progress", "success"]
    );
    assert_eq!(
        statuses[3].1.as_deref(),
        Some("https://github.com/o/r/actions/runs/101")
    );
    let deployments: Vec<_> = github
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p == "/repos/o/r/deployments")
        .collect();
    assert_eq!(deployments[1].2["ref"], SHA_NEW);
    assert_eq!(deployments[1].2["environment"], "dev");
    // The commit order was checked against the live commit.
    assert!(github
        .requests()
        .iter()
        .any(|(m, p, _)| m == "GET" && p == &format!("/repos/o/r/compare/{SHA_OLD}...{SHA_NEW}")));
}

#[test]
fn an_older_commit_than_the_live_one_is_refused() {
    let site = Site::new("older");
    let github = FakeGitHub::start("behind");
    run_action(&site, &github, SHA_NEW, "300", "new")
        .run
        .success();
    let older = run_action(&site, &github, SHA_OLD, "301", "old");
    older.run.code(1);
    assert!(
        older
            .run
            .last_line()
            .contains("refusing to deploy 1111111: it is older than the live commit 2222222"),
        "{}",
        older.run.last_line()
    );
    assert_eq!(site.served(), Some(("new".into(), "blue".into())));
    assert!(github
        .requests()
        .iter()
        .any(|(_, p, _)| p == &format!("/repos/o/r/compare/{SHA_NEW}...{SHA_OLD}")));
}

#[test]
fn a_lock_held_by_a_completed_run_is_taken_over() {
    let site = Site::new("takeover");
    let github = FakeGitHub::start("ahead");
    run_action(&site, &github, SHA_OLD, "400", "first")
        .run
        .success();
    // Run 1 (completed, says the API) left a deploy behind that holds the lock: frozen mid-deploy.
    let (mut stuck, _, _) = action_command(&site, &github, SHA_OLD, "1", "stuck");
    let mut stuck = stuck
        .env("INPUT_LOCK_TIMEOUT", "5m")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while site.status_json()["lock"].is_null() {
        assert!(
            Instant::now() < deadline,
            "the stuck run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe { libc::kill(stuck.id() as i32, libc::SIGSTOP) };
    let started = Instant::now();
    let next = run_action(&site, &github, SHA_NEW, "401", "next");
    unsafe { libc::kill(stuck.id() as i32, libc::SIGKILL) };
    let _ = stuck.wait();
    next.run.success();
    assert!(next.run.stderr.contains("workflow run https://github.com/o/r/actions/runs/1 has completed: taking its lock over"), "{}", next.run.stderr);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(site.served().map(|s| s.0), Some("next".into()));
}

#[test]
fn sigterm_during_the_health_wait_releases_everything_within_5_seconds() {
    let mut site = Site::new("actionterm");
    let github = FakeGitHub::start("ahead");
    run_action(&site, &github, SHA_OLD, "500", "before")
        .run
        .success();
    site.set("BLUEGREEN_HEALTH_EXPECT", "never-there");
    site.set("BLUEGREEN_HEALTH_TIMEOUT", "60s");
    let (mut command, outputs, summary) = action_command(&site, &github, SHA_NEW, "501", "after");
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while site.container_state("green").as_deref() != Some("running") {
        assert!(Instant::now() < deadline, "green never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?}",
        signalled.elapsed()
    );
    run.code(1);
    assert!(run.stderr.contains("::error::"), "{}", run.stderr);
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.contains("cancelled") && summary.contains("blue still serves traffic"),
        "{summary}"
    );
    assert!(std::fs::read_to_string(outputs).unwrap().contains(SHA_NEW));
    assert_eq!(site.served(), Some(("before".into(), "blue".into())));
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
    let last_status = github
        .requests()
        .into_iter()
        .rev()
        .find(|(_, p, _)| p.ends_with("/statuses"))
        .unwrap();
    assert_eq!(
        last_status.2["state"], "error",
        "a cancelled run is an error"
    );
}

#[test]
fn github_api_failures_warn_and_never_fail_the_deploy() {
    let site = Site::new("apidown");
    let github = FakeGitHub::broken();
    let first = run_action(&site, &github, SHA_OLD, "700", "d1");
    first.run.success();
    assert!(
        first.run.stderr.contains("::warning::"),
        "{}",
        first.run.stderr
    );
    assert!(
        first
            .run
            .stderr
            .contains("deploying without a GitHub deployment"),
        "{}",
        first.run.stderr
    );
    let second = run_action(&site, &github, SHA_NEW, "701", "d2");
    second.run.success();
    assert!(
        second
            .run
            .stderr
            .contains("the commit order was not checked"),
        "{}",
        second.run.stderr
    );
    assert_eq!(site.served(), Some(("d2".into(), "green".into())));
    assert!(!github.requests().is_empty(), "the API was asked");
}
