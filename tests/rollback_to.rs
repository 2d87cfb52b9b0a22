//! `rollback --to N|IMAGE` on the real servers (sshd, nginx, Docker, the registry): the number
//! `status` shows is the one `--to` takes; an image no color holds any more is pulled by
//! digest and started with a deploy's checks; and from the action, the GitHub Deployment moves
//! to the restored commit. The GitHub API is the only faked component (a local wiremock server).

use crate::action::{action_command, output};
use crate::support::github::FakeGitHub;
use crate::support::{Run, Site};

const SHA_OLD: &str = "1111111111111111111111111111111111111111";
const SHA_NEW: &str = "2222222222222222222222222222222222222222";

#[test]
fn rollback_to_goes_to_the_numbered_entry_or_the_digest_status_shows() {
    let site = Site::new("rollbackto");
    for version in ["v1", "v2", "v3"] {
        site.deploy(version).success();
    }
    // blue: v3, green: v2 (kept); v1 is on no color any more.
    let status = site.status_json();
    let history = status["history"].as_array().unwrap();
    let numbers: Vec<_> = history.iter().map(|h| h["number"].clone()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let v1 = history[2]["image"].as_str().unwrap().to_owned();
    let v3 = history[0]["image"].as_str().unwrap().to_owned();
    assert!(v1.contains("@sha256:"), "{v1}");
    let human = site.run(&["status"]);
    human.success();
    assert!(
        human
            .stdout
            .contains("`rollback --to N` takes a numbered entry"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.starts_with("   3  ") && l.ends_with(&v1)),
        "{}",
        human.stdout
    );

    let beyond = site.run(&["rollback", "--to", "4"]);
    beyond.code(2);
    assert!(
        beyond.last_line().contains("--to 4: the history in "),
        "{}",
        beyond.last_line()
    );
    assert!(
        beyond
            .last_line()
            .contains("has 3 successful entries, numbered 1–3 by `bluegreen status`; blue still serves traffic"),
        "{}",
        beyond.last_line()
    );
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));

    // v1 runs on no color: pulled by digest, started on green, checked, switched.
    let to_v1 = site.run(&["rollback", "--to", "3"]);
    to_v1.success();
    assert!(
        to_v1.stderr.contains(&format!("rolling back to {v1}")),
        "{}",
        to_v1.stderr
    );
    assert_eq!(site.served(), Some(("v1".into(), "green".into())));
    let status = site.status_json();
    assert_eq!(status["live_image"], v1.as_str());
    assert_eq!(status["history"][0]["action"], "rollback");
    assert_eq!(status["history"][0]["number"], 1);

    // v3 by its digest alone (12 hex digits are enough): blue's kept container, started again.
    let short = &v3[v3.find("sha256:").unwrap()..][..19];
    site.run(&["rollback", "--to", short]).success();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));

    // The newest entry is what serves: nothing changes, exit 0.
    let again = site.run(&["rollback", "--to", "1"]);
    again.success();
    assert!(
        again.stderr.contains("already live: blue serves"),
        "{}",
        again.stderr
    );
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));

    let tag = site.run(&["rollback", "--to", "v2"]);
    tag.code(2);
    assert!(
        tag.last_line()
            .contains("--to v2: neither a history number nor a digest"),
        "{}",
        tag.last_line()
    );
}

/// Runs the action with `command` and extra inputs against `site`.
fn action(
    site: &Site,
    github: &FakeGitHub,
    sha: &str,
    run_id: &str,
    inputs: &[(&str, &str)],
) -> (Run, String) {
    let (mut command, outputs, _) = action_command(site, github, sha, run_id, run_id);
    for (name, value) in inputs {
        command.env(format!("INPUT_{}", name.to_ascii_uppercase()), value);
    }
    let run = Run::from(command.output().unwrap());
    (run, std::fs::read_to_string(outputs).unwrap_or_default())
}

#[test]
fn a_rollback_from_the_action_moves_the_github_deployment_to_the_restored_commit() {
    let site = Site::new("rollbackgh");
    let github = FakeGitHub::start("ahead");
    action(&site, &github, SHA_OLD, "100", &[]).0.success();
    action(&site, &github, SHA_NEW, "101", &[]).0.success();
    assert_eq!(site.served(), Some(("101".into(), "green".into())));

    // The workflow's own commit is the newer one: the deployment must name the restored one.
    let (run, outputs) = action(
        &site,
        &github,
        SHA_NEW,
        "102",
        &[("command", "rollback"), ("to", "2")],
    );
    run.success();
    assert_eq!(site.served(), Some(("100".into(), "blue".into())));
    assert_eq!(output(&outputs, "serving_color").as_deref(), Some("blue"));
    assert_eq!(output(&outputs, "sha").as_deref(), Some(SHA_OLD));

    let requests = github.requests();
    let deployments: Vec<_> = requests
        .iter()
        .filter(|(m, p, _)| m == "POST" && p == "/repos/o/r/deployments")
        .collect();
    assert_eq!(deployments.len(), 3, "{deployments:?}");
    assert_eq!(deployments[2].2["ref"], SHA_OLD);
    assert_eq!(deployments[2].2["environment"], "dev");
    let last_status = &requests
        .iter()
        .rfind(|(m, p, _)| m == "POST" && p.ends_with("/statuses"))
        .unwrap()
        .2;
    assert_eq!(last_status["state"], "success");
    assert!(
        last_status["description"]
            .as_str()
            .unwrap()
            .starts_with("rolled back: blue serves "),
        "{last_status}"
    );
    assert_eq!(
        last_status["log_url"],
        "https://github.com/o/r/actions/runs/102"
    );

    // A `to` that names nothing recorded: exit 2, the input named, nothing changed.
    let (bad, _) = action(
        &site,
        &github,
        SHA_NEW,
        "103",
        &[("command", "rollback"), ("to", "9")],
    );
    bad.code(2);
    assert!(
        bad.stderr.contains("the `to` input 9: the history in "),
        "{}",
        bad.stderr
    );
    assert_eq!(site.served(), Some(("100".into(), "blue".into())));
}

/// Process mode: IMAGE is a release (`release:ID`, or the 12 hex digits alone) that ran before
/// and is still kept on the server.
#[test]
fn process_mode_rolls_back_to_a_release_by_its_id() {
    use crate::process::{build_jar, deploy, process_site, release_of, Processes};
    let mut site = process_site("procto");
    let _processes = Processes(site.state_dir.clone());
    let jars: Vec<_> = ["v1", "v2", "v3"]
        .iter()
        .map(|v| build_jar(&site.dir, v))
        .collect();
    for jar in &jars {
        deploy(&mut site, jar).success();
    }
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
    let status = site.status_json();
    assert_eq!(status["history"][2]["number"], 3);
    assert_eq!(status["history"][2]["image"], release_of(&jars[0]).as_str());

    // v1 runs on no color: its kept release starts on green.
    let v1_id = release_of(&jars[0])
        .trim_start_matches("release:")
        .to_owned();
    site.run(&["rollback", "--to", &v1_id]).success();
    assert_eq!(site.served(), Some(("v1".into(), "green".into())));
    site.run(&["rollback", "--to", &release_of(&jars[2])])
        .success();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
}
