//! The action as users run it: the published image run by `docker run` exactly as GitHub's
//! runner runs a container action (see `support::runner`), inputs built from `action.yml`
//! with its declared defaults. The GitHub API is a local fake (wiremock); all else is real.

use std::time::{Duration, Instant};

use crate::support::github::FakeGitHub;
use crate::support::runner::{keep_summary, stable, Step, StepRun, GITHUB_TOKEN};
use crate::support::{shared, Run, Site, REGISTRY_TOKEN};

const SHA_1: &str = "1111111111111111111111111111111111111111";
const SHA_2: &str = "2222222222222222222222222222222222222222";

fn deployment_statuses(github: &FakeGitHub) -> Vec<serde_json::Value> {
    github
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/statuses"))
        .map(|(_, _, body)| body)
        .collect()
}

/// No secret in the log (after the masks), the summary or the outputs.
fn assert_no_secret(step: &StepRun) {
    let key_line = std::fs::read_to_string(&shared().user_key)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let log: String = step
        .run
        .stderr
        .lines()
        .chain(step.run.stdout.lines())
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [REGISTRY_TOKEN, GITHUB_TOKEN, key_line.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log");
        assert!(
            !step.summary.contains(secret),
            "a secret reached the summary"
        );
        assert!(
            step.outputs.values().all(|v| !v.contains(secret)),
            "a secret reached the outputs"
        );
    }
}

/// The declared defaults of `action.yml` reach the binary as inputs (the runner passes them),
/// and `bluegreen.yml` must still win for everything the workflow did not set.
#[test]
fn bluegreen_yml_in_the_workspace_wins_over_inputs_the_workflow_did_not_set() {
    let site = Site::new("precedence");
    let github = FakeGitHub::start("ahead");
    let step = Step::new(&site, &github, SHA_1, "800", "p1")
        .without("health_path")
        .without("environment");
    // Only /ping answers "pong": a deploy probing the default /actuator/health would fail.
    std::fs::write(
        step.workspace.join("bluegreen.yml"),
        "environment: prod\nhealth_path: /ping\nhealth_expect: pong\n",
    )
    .unwrap();
    let inputs = crate::support::runner::runner_inputs(&step.with);
    assert!(
        inputs.contains(&("INPUT_ENVIRONMENT".into(), String::new())),
        "the runner passes an undeclared-default input as empty: {inputs:?}"
    );
    let done = step.run();
    done.run.success();
    assert!(
        done.run.stderr.contains(&format!(
            "wait for health: GET http://127.0.0.1:{}/ping",
            site.blue_port
        )),
        "{}",
        done.run.stderr
    );
    assert_eq!(done.output("result"), "success");
    let deployment = github
        .requests()
        .into_iter()
        .find(|(m, p, _)| m == "POST" && p == "/repos/o/r/deployments")
        .unwrap();
    assert_eq!(deployment.2["environment"], "prod");
    assert_eq!(deployment.2["production_environment"], true);
    assert!(
        done.summary.contains("| tag | `prod-1111111` |"),
        "{}",
        done.summary
    );
    assert_eq!(site.served(), Some(("p1".into(), "blue".into())));
}

/// Every `command` of the action on one site, in the order an operator would use them.
#[test]
fn every_command_runs_from_the_action_and_writes_its_outputs() {
    let site = Site::new("commands");
    let github = FakeGitHub::start("ahead");
    let first = Step::new(&site, &github, SHA_1, "900", "c1").run();
    first.run.success();
    assert_eq!(first.output("color"), "blue");
    assert_eq!(first.output("previous_color"), "");

    let ship = Step::new(&site, &github, SHA_2, "901", "c2").run();
    ship.run.success();
    assert_no_secret(&ship);
    assert!(ship.run.stderr.starts_with("::add-mask::"));
    assert!(ship.run.stderr.contains("::group::build the image"));
    let (image, digest) = (ship.output("image"), ship.output("digest"));
    assert!(image.ends_with(&format!("@{digest}")) && digest.starts_with("sha256:"));
    for (name, value) in [
        ("result", "success"),
        ("serving_color", "green"),
        ("color", "green"),
        ("previous_color", "blue"),
        ("sha", SHA_2),
    ] {
        assert_eq!(ship.output(name), value, "output {name}");
    }
    keep_summary("runner_summary_ship", &ship.summary);
    insta::assert_snapshot!("runner_summary_ship", stable(&ship.summary, &site));
    let last = deployment_statuses(&github).pop().unwrap();
    assert_eq!(last["state"], "success");
    assert!(
        last.get("environment_url").is_none(),
        "a loopback URL is not public"
    );

    // deploy: the environment's moving tag, which ship just pushed, is already live.
    let deploy = Step::new(&site, &github, SHA_2, "902", "-")
        .with("command", "deploy")
        .run();
    deploy.run.success();
    assert_eq!(deploy.output("result"), "unchanged");
    assert_eq!(deploy.output("serving_color"), "green");
    assert_eq!(deploy.output("image"), image);
    keep_summary("runner_summary_deploy_unchanged", &deploy.summary);
    insta::assert_snapshot!(
        "runner_summary_deploy_unchanged",
        stable(&deploy.summary, &site)
    );

    let status = Step::new(&site, &github, SHA_2, "903", "-")
        .with("command", "status")
        .run();
    status.run.success();
    assert!(
        status.run.stdout.contains("live:       green"),
        "{}",
        status.run.stdout
    );
    assert_eq!(status.output("serving_color"), "green");
    assert_eq!(status.output("result"), "success");
    keep_summary("runner_summary_status", &status.summary);
    insta::assert_snapshot!("runner_summary_status", stable(&status.summary, &site));

    // With action.yml's default `traffic_switch: auto`, the action asks the server which switch
    // to use (it once never did, and every action deploy reloaded nginx).
    let plan = Step::new(&site, &github, SHA_2, "904", "-")
        .with("command", "plan")
        .without("traffic_switch")
        .run();
    plan.run.success();
    assert!(
        plan.run.stdout.contains("# traffic_switch auto chose "),
        "{}",
        plan.run.stdout
    );
    assert!(
        plan.run
            .stdout
            .contains("# live color: green; the deploy goes to blue"),
        "{}",
        plan.run.stdout
    );
    assert!(plan.summary.contains("server commands a deploy would run"));

    let rollback = Step::new(&site, &github, SHA_2, "905", "-")
        .with("command", "rollback")
        .run();
    rollback.run.success();
    assert_eq!(rollback.output("color"), "blue");
    assert_eq!(rollback.output("serving_color"), "blue");
    assert_eq!(site.served(), Some(("c1".into(), "blue".into())));
    keep_summary("runner_summary_rollback", &rollback.summary);
    insta::assert_snapshot!("runner_summary_rollback", stable(&rollback.summary, &site));

    let unlock = Step::new(&site, &github, SHA_2, "906", "-")
        .with("command", "unlock")
        .run();
    unlock.run.success();
    assert!(
        unlock.run.stdout.contains("was not held"),
        "{}",
        unlock.run.stdout
    );

    let doctor = Step::new(&site, &github, SHA_2, "907", "-")
        .with("command", "doctor")
        .run();
    doctor.run.success();
    assert!(
        doctor
            .run
            .stdout
            .contains("✓ nginx includes the switch file"),
        "{}",
        doctor.run.stdout
    );
    assert!(
        doctor.summary.contains("✓ SSH login as"),
        "{}",
        doctor.summary
    );
    assert_eq!(doctor.output("result"), "success");

    let typo = Step::new(&site, &github, SHA_2, "908", "-")
        .with("command", "shipit")
        .run();
    typo.run.code(2);
    assert!(typo
        .run
        .last_line()
        .contains("`shipit` is not one of ship, deploy"));
    // Deployments: two ships and one unchanged deploy, then the rollback's, for the restored
    // commit (blue was built from SHA_1), so GitHub shows what serves.
    let created: Vec<_> = github
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p == "/repos/o/r/deployments")
        .collect();
    assert_eq!(created.len(), 4);
    assert_eq!(created[3].2["ref"], SHA_1);
    assert_eq!(site.served(), Some(("c1".into(), "blue".into())));
}

#[test]
fn a_failed_deploy_writes_every_output_and_advises_no_rollback() {
    let site = Site::new("runnerfail");
    let github = FakeGitHub::start("ahead");
    Step::new(&site, &github, SHA_1, "910", "good")
        .run()
        .run
        .success();
    let failed = Step::new(&site, &github, SHA_2, "911", "bad")
        .with("health_timeout", "3s")
        .with("health_expect", "no-such-text")
        .run();
    failed.run.code(1);
    assert!(failed
        .run
        .last_line()
        .starts_with("::error::health check of green"));
    for (name, value) in [
        ("result", "failure"),
        ("serving_color", "blue"),
        ("color", ""),
        ("previous_color", ""),
        ("image", ""),
        ("digest", ""),
        ("sha", SHA_2),
    ] {
        assert_eq!(failed.output(name), value, "output {name}");
    }
    assert_no_secret(&failed);
    assert!(!failed.summary.contains("rollback"), "{}", failed.summary);
    assert!(failed.summary.contains("demo app bad starting"));
    // Green never got traffic, and its log lines are in the block below the advice.
    assert!(!failed.summary.contains("switch"), "{}", failed.summary);
    assert!(failed.summary.contains("see its last log lines below"));
    crate::action::assert_groups_pair(&failed.run.stderr);
    keep_summary("runner_summary_failure", &failed.summary);
    insta::assert_snapshot!("runner_summary_failure", stable(&failed.summary, &site));
    assert_eq!(
        deployment_statuses(&github).pop().unwrap()["state"],
        "failure"
    );
    assert_eq!(site.served(), Some(("good".into(), "blue".into())));
}

/// Cancelling the job: the runner signals `docker`, which forwards SIGINT to the binary.
#[test]
fn a_cancelled_run_reports_cancelled_and_the_old_color_keeps_serving() {
    let site = Site::new("runnercancel");
    let github = FakeGitHub::start("ahead");
    Step::new(&site, &github, SHA_1, "920", "before")
        .run()
        .run
        .success();
    let step = Step::new(&site, &github, SHA_2, "921", "after")
        .with("health_timeout", "60s")
        .with("health_expect", "never-there");
    let child = step.spawn();
    let deadline = Instant::now() + Duration::from_secs(90);
    while site.container_state("green").as_deref() != Some("running") {
        assert!(Instant::now() < deadline, "green never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    step.signal("SIGINT");
    let cancelled = step.finished(Run::from(child.wait_with_output().unwrap()));
    assert!(
        signalled.elapsed() < Duration::from_secs(7),
        "the runner sends SIGTERM after 7.5 s; took {:?}",
        signalled.elapsed()
    );
    cancelled.run.code(1);
    assert_eq!(cancelled.output("result"), "cancelled");
    assert_eq!(cancelled.output("serving_color"), "blue");
    assert_eq!(cancelled.output("color"), "");
    keep_summary("runner_summary_cancelled", &cancelled.summary);
    insta::assert_snapshot!(
        "runner_summary_cancelled",
        stable(&cancelled.summary, &site)
    );
    assert_eq!(
        deployment_statuses(&github).pop().unwrap()["state"],
        "error"
    );
    assert_eq!(site.served(), Some(("before".into(), "blue".into())));
    assert_eq!(site.status_json()["lock"], serde_json::Value::Null);
}
