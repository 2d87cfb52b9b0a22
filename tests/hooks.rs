//! Operator features against the real server: `env` / `secret_env` in the app's environment
//! (the secret never on argv or in the output), and the `pre_switch_command` /
//! `post_deploy_command` hooks with their placeholders and failure paths.

use std::process::Command;

use crate::support::{sh, Site};

fn container_env(site: &Site, color: &str) -> String {
    sh(Command::new("docker").args([
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &format!("{}-{color}", site.app),
    ]))
}

#[test]
fn env_secret_env_and_hooks_on_a_real_server() {
    let mut site = Site::new("hooks");
    let log = site.dir.join("hooks.log");
    site.set(
        "BLUEGREEN_ENV",
        "SPRING_PROFILES_ACTIVE=prod\nGREETING=hello world",
    );
    site.set("BLUEGREEN_SECRET_ENV", "DB_PASSWORD=pa55-Secret-xyz");
    site.set(
        "BLUEGREEN_PRE_SWITCH_COMMAND",
        &format!(
            "echo pre {{color}} {{port}} {{container}} {{image}} >> {}",
            log.display()
        ),
    );
    site.set(
        "BLUEGREEN_POST_DEPLOY_COMMAND",
        &format!("echo post {{color}} >> {}", log.display()),
    );
    let first = site.deploy("v1");
    first.success();
    let env = container_env(&site, "blue");
    assert!(env.contains("\"SPRING_PROFILES_ACTIVE=prod\""), "{env}");
    assert!(env.contains("\"GREETING=hello world\""), "{env}");
    assert!(env.contains("\"DB_PASSWORD=pa55-Secret-xyz\""), "{env}");
    assert!(
        !first.stdout.contains("pa55-Secret-xyz") && !first.stderr.contains("pa55-Secret-xyz"),
        "the secret was printed:\n{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("--env-file /dev/stdin"),
        "{}",
        first.stderr
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    let pre = logged.lines().next().unwrap();
    assert!(
        pre.starts_with(&format!("pre blue {} {}-blue ", site.blue_port, site.app))
            && pre.contains("@sha256:"),
        "{logged}"
    );
    assert_eq!(logged.lines().nth(1), Some("post blue"), "{logged}");

    // A failing pre-switch hook: nothing moves, green is stopped, the reason is named.
    site.set(
        "BLUEGREEN_PRE_SWITCH_COMMAND",
        "echo migration refused >&2; exit 3",
    );
    let refused = site.deploy("v2");
    refused.code(1);
    let last = refused.last_line();
    assert!(last.contains("pre_switch_command failed"), "{last}");
    assert!(last.contains("migration refused"), "{last}");
    assert!(last.contains("blue still serves traffic"), "{last}");
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_ne!(site.container_state("green").as_deref(), Some("running"));

    // A failing post-deploy hook is reported; the verified deploy stands.
    site.env
        .retain(|(name, _)| name != "BLUEGREEN_PRE_SWITCH_COMMAND");
    site.set("BLUEGREEN_POST_DEPLOY_COMMAND", "exit 4");
    let reported = site.deploy("v2");
    reported.success();
    assert!(
        reported.stderr.contains("post_deploy_command failed"),
        "{}",
        reported.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));

    // A rollback does not run hooks.
    site.set("BLUEGREEN_PRE_SWITCH_COMMAND", "exit 5");
    site.run(&["rollback"]).success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}
