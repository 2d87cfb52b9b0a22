//! Settings a server would misread are refused before any connection: exit 2, naming the
//! setting (issue 21's low cases).

use crate::support::{shared, Run, Site};

/// Runs `deploy` with `overrides`; expects exit 2 naming `setting` with `words` in its line,
/// and nothing on the server touched.
fn rejects(site: &Site, overrides: &[(&str, &str)], setting: &str, words: &str) -> Run {
    rejects_with(site, &[], overrides, setting, words)
}

/// [`rejects`] with extra arguments (`--config FILE` for a value too long for a variable).
fn rejects_with(
    site: &Site,
    args: &[&str],
    overrides: &[(&str, &str)],
    setting: &str,
    words: &str,
) -> Run {
    let image = shared().image("v1");
    let mut argv = vec!["deploy", "--image-ref", &image];
    argv.extend(args);
    let mut command = site.bluegreen(&argv);
    for (name, value) in overrides {
        command.env(name, value);
    }
    let run = Run::from(command.output().unwrap());
    run.code(2);
    let line = run
        .stderr
        .lines()
        .find(|line| line.contains(&format!("{setting}: ")))
        .unwrap_or_else(|| panic!("no line names `{setting}`: {}", run.stderr));
    assert!(line.contains(words), "`{words}` expected: {line}");
    assert!(!site.state_dir.exists(), "the server state was touched");
    run
}

#[test]
fn durations_the_server_counts_in_seconds_refuse_fractions() {
    let site = Site::new("seconds");
    for value in ["0", "1ms", "999ms"] {
        rejects(
            &site,
            &[("BLUEGREEN_COMMAND_TIMEOUT", value)],
            "command_timeout",
            "at least 1s",
        );
        rejects(
            &site,
            &[("BLUEGREEN_LOCK_TIMEOUT", value)],
            "lock_timeout",
            "at least 1s",
        );
    }
    rejects(
        &site,
        &[("BLUEGREEN_COMMAND_TIMEOUT", "1500ms")],
        "command_timeout",
        "whole number of seconds",
    );
    // `docker stop -t` takes whole seconds: 500ms would kill at once.
    rejects(
        &site,
        &[("BLUEGREEN_STOP_TIMEOUT", "500ms")],
        "stop_timeout",
        "whole number of seconds",
    );
}

#[test]
fn a_health_path_that_cannot_be_in_a_url_is_refused() {
    let site = Site::new("urlpath");
    rejects(
        &site,
        &[("BLUEGREEN_HEALTH_PATH", "/actuator/my health")],
        "health_path",
        "a space",
    );
    rejects(
        &site,
        &[("BLUEGREEN_HEALTH_PATH", "/up\"x")],
        "health_path",
        "cannot be in a URL path",
    );
}

#[test]
fn env_values_over_the_servers_limits_are_refused_naming_the_limit() {
    let site = Site::new("envsize");
    // Container mode: `env` travels on `docker run`'s argv, inside the one SSH command line.
    let long = format!("BIG={}", "x".repeat(100_000));
    rejects(&site, &[("BLUEGREEN_ENV", &long)], "env", "at most 98304");
    // secret_env goes to docker's --env-file reader on stdin: 64 KiB per line.
    let secret = format!("TOKEN={}", "s".repeat(70_000));
    let run = rejects(
        &site,
        &[("BLUEGREEN_SECRET_ENV", &secret)],
        "secret_env",
        "at most 65535",
    );
    assert!(!run.stderr.contains("sssssssss"), "the secret was printed");
    // Beyond 128 KiB no route works: Linux refuses the environment string itself.
    // (Too long for a variable here too, so it comes from a file.)
    let file = site.dir.join("huge.yml");
    let huge = "s".repeat(140_000);
    std::fs::write(&file, format!("secret_env: |\n  TOKEN={huge}\n")).unwrap();
    rejects_with(
        &site,
        &["--config", file.to_str().unwrap()],
        &[("BLUEGREEN_RUN_COMMAND", "java -jar {artifact}")],
        "secret_env",
        "at most 131071",
    );
}

#[test]
fn a_hidden_artifact_name_is_refused() {
    let site = Site::new("hiddenjar");
    std::fs::write(site.dir.join(".x.jar"), b"jar").unwrap();
    for artifact in [".x.jar", "build/libs/.app.jar"] {
        rejects(
            &site,
            &[
                (
                    "BLUEGREEN_RUN_COMMAND",
                    "java -jar {artifact} --port={port}",
                ),
                ("BLUEGREEN_ARTIFACT", artifact),
            ],
            "artifact",
            "hidden file name",
        );
    }
}

#[test]
fn process_mode_ignores_a_docker_token_with_a_notice() {
    let mut site = crate::process::process_site("proctoken");
    let jar = crate::process::build_jar(&site.dir, "v1");
    site.set("BLUEGREEN_ARTIFACT", jar.to_str().unwrap());
    site.set("BLUEGREEN_DOCKER_TOKEN", "tok-3f9a1c");
    let run = site.run(&["plan"]);
    run.success();
    assert!(
        run.stderr
            .contains("docker_token is set, but process mode uses no registry")
            || run
                .stdout
                .contains("docker_token is set, but process mode uses no registry"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("tok-3f9a1c") && !run.stdout.contains("tok-3f9a1c"));
}

#[test]
fn a_proxy_jump_with_a_bad_user_part_is_refused() {
    let site = Site::new("jumpuser");
    for jump in [
        "-oProxyCommand=x@bastion.example.com",
        "a/b@bastion.example.com:22",
        "@bastion.example.com",
        "user:pw@bastion.example.com",
        "%d@bastion.example.com",
    ] {
        rejects(
            &site,
            &[("BLUEGREEN_PROXY_JUMP", jump)],
            "proxy_jump",
            "is not user@host:port",
        );
    }
}

#[test]
fn status_shows_control_characters_from_server_files_escaped() {
    let site = Site::new("escapes");
    std::fs::create_dir_all(&site.state_dir).unwrap();
    let image = "app@sha256:1\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nlive:       green forged";
    let entry = serde_json::json!({
        "time": "2026-12-06T10:00:00Z\u{1b}[31m",
        "action": "deploy",
        "color": "blue",
        "image": image,
        "result": "success",
    });
    std::fs::write(site.state_dir.join("history.jsonl"), format!("{entry}\n")).unwrap();
    let run = site.run(&["status"]);
    run.success();
    for raw in ['\u{1b}', '\u{7}', '\r'] {
        assert!(
            !run.stdout.contains(raw) && !run.stderr.contains(raw),
            "{:?} reached the terminal: {:?}",
            raw,
            run.stdout
        );
    }
    assert!(
        run.stdout
            .contains("app@sha256:1\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\r\\nlive:       green forged"),
        "{}",
        run.stdout
    );
    assert!(!run
        .stdout
        .lines()
        .any(|l| l.starts_with("live:       green")));
    // --json keeps the value exact (JSON escapes it).
    let json = site.status_json();
    assert_eq!(json["history"][0]["image"], image);
}

#[test]
fn a_switch_file_naming_neither_color_is_quoted_by_a_short_excerpt() {
    let site = Site::new("switchexcerpt");
    let mut content = String::from("set $service_url http://127.0.0.1:9;\n");
    for n in 0..300 {
        content.push_str(&format!("# line {n} of an operator's long comment block\n"));
    }
    std::fs::write(&site.switch_file, &content).unwrap();
    let run = site.deploy("v1");
    run.code(1);
    let last = run.last_line();
    assert!(
        last.contains("points at neither color")
            && last.contains("`set $service_url http://127.0.0.1:9;` and 300 more lines"),
        "{last}"
    );
    assert!(!last.contains("line 299"), "the whole file was echoed");
    assert!(last.len() < 600, "{} characters: {last}", last.len());
}

#[test]
fn plan_says_how_often_the_deploy_really_probes_health() {
    let mut site = Site::new("plancadence");
    site.set("BLUEGREEN_HEALTH_INTERVAL", "1s");
    let run = site.run(&["plan", "--image-ref", &shared().image("v1")]);
    run.success();
    assert!(
        run.stdout.contains(
            "every 50ms while the port refuses connections and for the first 10s, then every \
             1000ms, up to 20s"
        ),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("/actuator/health every 1000ms"),
        "{}",
        run.stdout
    );
}
