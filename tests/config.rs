//! Bad input exits 2 before anything on the server is touched, naming every bad setting.

use crate::support::{shared, Site};

/// Runs `deploy` with one setting changed; expects exit 2 naming `setting`.
fn rejects(site: &Site, overrides: &[(&str, &str)], setting: &str) {
    let mut command = site.bluegreen(&["deploy", "--image-ref", &shared().image("v1")]);
    for (name, value) in overrides {
        command.env(name, value);
    }
    let run = crate::support::Run::from(command.output().unwrap());
    run.code(2);
    assert!(
        run.stderr.contains(&format!("{setting}:")),
        "the message should name `{setting}`: {}",
        run.stderr
    );
    assert!(
        run.last_line()
            .contains("nothing on the server was touched")
            || run.last_line().contains("nothing was changed"),
        "{}",
        run.last_line()
    );
}

#[test]
fn bad_settings_exit_2_naming_the_setting_and_touch_nothing() {
    let site = Site::new("badinput");
    let unreadable = site.dir.join("missing-key");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("BLUEGREEN_HOST", "")], "host"),
        (&[("BLUEGREEN_HOST", "two words")], "host"),
        (&[("BLUEGREEN_PORT", "99999")], "port"),
        (&[("BLUEGREEN_PORT", "ssh")], "port"),
        (
            &[("BLUEGREEN_KEY_FILE", unreadable.to_str().unwrap())],
            "key_file",
        ),
        (&[("BLUEGREEN_KEY_FILE", "")], "key"),
        (&[("BLUEGREEN_KEY", "not a key")], "key"),
        (&[("BLUEGREEN_KNOWN_HOSTS", "garbage line")], "known_hosts"),
        (&[("BLUEGREEN_KNOWN_HOSTS", "")], "known_hosts"),
        (
            &[
                ("BLUEGREEN_HOST_FINGERPRINT", "MD5:aa"),
                ("BLUEGREEN_KNOWN_HOSTS", ""),
            ],
            "host_fingerprint",
        ),
        (&[("BLUEGREEN_IMAGE", "Bad Image")], "image"),
        (&[("BLUEGREEN_IMAGE", "org/app:tag")], "image"),
        (
            &[(
                "BLUEGREEN_NGINX_SWITCH_TEMPLATE",
                "set $x http://127.0.0.1:{prot};",
            )],
            "nginx_switch_template",
        ),
        (&[("BLUEGREEN_HEALTH_TIMEOUT", "-5s")], "health_timeout"),
        (&[("BLUEGREEN_DRAIN_TIMEOUT", "soon")], "drain_timeout"),
        (&[("BLUEGREEN_BAKE_TIME", "a while")], "bake_time"),
        (
            &[("BLUEGREEN_BAKE_MAX_ERROR_RATE", "5")],
            "bake_max_error_rate",
        ),
        (
            &[("BLUEGREEN_BAKE_MAX_ERROR_RATE", "150%")],
            "bake_max_error_rate",
        ),
        (&[("BLUEGREEN_HEALTH_INTERVAL", "0")], "health_interval"),
        (&[("BLUEGREEN_BLUE_PORT", "0")], "blue_port"),
        (&[("BLUEGREEN_GREEN_PORT", "65536")], "green_port"),
        (
            &[
                ("BLUEGREEN_BLUE_PORT", "8081"),
                ("BLUEGREEN_GREEN_PORT", "8081"),
            ],
            "green_port",
        ),
        (&[("BLUEGREEN_HEALTH_PATH", "health")], "health_path"),
        (
            &[("BLUEGREEN_VERIFY_URL", "https://example.com/")],
            "verify_url",
        ),
        (&[("BLUEGREEN_SUDO", "maybe")], "sudo"),
        (&[("BLUEGREEN_KEEP_OLD", "perhaps")], "keep_old"),
        (&[("BLUEGREEN_ENVIRONMENT", "pr/12")], "environment"),
        (&[("BLUEGREEN_APP_NAME", "my app")], "app_name"),
        (&[("BLUEGREEN_DOCKER_USERNAME", "")], "docker_username"),
        (&[("BLUEGREEN_BUILD_ARGS", "NOEQUALS")], "build_args"),
    ];
    for (overrides, setting) in cases {
        rejects(&site, overrides, setting);
    }
    assert!(!site.state_dir.exists(), "the server state was touched");
    assert!(!site.switch_file.exists());
    assert_eq!(site.container_state("blue"), None);
}

#[test]
fn all_problems_are_reported_together() {
    let mut site = Site::new("manyproblems");
    site.set("BLUEGREEN_PORT", "0");
    site.set("BLUEGREEN_HEALTH_TIMEOUT", "forever");
    site.set("BLUEGREEN_GREEN_PORT", &site.blue_port.to_string());
    let run = site.deploy("v1");
    run.code(2);
    for name in ["port:", "health_timeout:", "green_port:"] {
        assert!(run.stderr.contains(name), "missing {name}: {}", run.stderr);
    }
    // One line names all three, so a user fixes them in one go.
    let last = run.last_line();
    let named = last
        .split_once("invalid settings (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(names, _)| names)
        .unwrap_or("");
    let mut names: Vec<&str> = named.split(", ").collect();
    names.sort();
    assert_eq!(names, ["green_port", "health_timeout", "port"], "{last}");
    // Each problem is printed once: listed, not repeated in the last line.
    assert_eq!(
        run.stderr.matches("is not a duration").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn newcomer_paths_work_or_say_what_to_fix() {
    let mut site = Site::new("newcomer");
    // `~` in key_file is the home directory, as in the README's example.
    let home = site.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = site.setting("BLUEGREEN_KEY_FILE");
    std::fs::copy(&key, home.join(".ssh/deploy_key")).unwrap();
    site.set("HOME", home.to_str().unwrap());
    site.set("BLUEGREEN_KEY_FILE", "~/.ssh/deploy_key");
    // No registry setting: the private registry is taken from the image's host part, so the
    // pull logs in there (it refuses anonymous pulls), not to Docker Hub.
    site.env.retain(|(name, _)| name != "BLUEGREEN_REGISTRY");
    // A misspelled variable is named, with the setting it most likely meant.
    site.set("BLUEGREEN_HELTH_TIMEOUT", "5s");
    let run = site.deploy("v1");
    run.success();
    assert!(
        run.stderr
            .contains("BLUEGREEN_HELTH_TIMEOUT names no setting (did you mean `health_timeout`?)"),
        "{}",
        run.stderr
    );
    // A health path the app does not serve is named after 10 s of 404s, not only at the end.
    site.set("BLUEGREEN_HEALTH_PATH", "/no-such-health");
    site.set("BLUEGREEN_HEALTH_TIMEOUT", "12s");
    let run = site.deploy("v2");
    run.code(1);
    assert!(
        run.stderr
            .contains("answers 404 Not Found on /no-such-health for 10s")
            && run.stderr.contains("check health_path"),
        "{}",
        run.stderr
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}

#[test]
fn unknown_keys_in_the_settings_file_are_errors() {
    let site = Site::new("yaml");
    let file = site.dir.join("bluegreen.yml");
    std::fs::write(&file, "helth_path: /up\nhealth_interval: 1s\n").unwrap();
    let run = site.run(&["status", "--config", file.to_str().unwrap()]);
    run.code(2);
    assert!(
        run.last_line()
            .contains("unknown setting `helth_path` (did you mean `health_path`?)"),
        "{}",
        run.last_line()
    );
}

#[test]
fn settings_come_from_the_file_with_env_and_flags_taking_precedence() {
    let mut site = Site::new("precedence");
    let file = site.dir.join("bluegreen.yml");
    // The file names a wrong port; the environment is unset for it; the flag wins over both.
    site.env.retain(|(k, _)| k != "BLUEGREEN_PORT");
    std::fs::write(&file, "port: 1\n").unwrap();
    let from_file = site.run(&["status", "--config", file.to_str().unwrap()]);
    from_file.code(1);
    assert!(
        from_file.last_line().contains("127.0.0.1:1"),
        "{}",
        from_file.last_line()
    );
    let port = shared().ssh_port.to_string();
    site.run(&[
        "status",
        "--config",
        file.to_str().unwrap(),
        "--port",
        &port,
    ])
    .success();
}

#[test]
fn a_changed_host_key_is_refused_showing_both_fingerprints() {
    let mut site = Site::new("hostkey");
    let dir = site.dir.join("otherkey");
    std::fs::create_dir_all(&dir).unwrap();
    crate::support::sh(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join("k")),
    );
    let other = std::fs::read_to_string(dir.join("k.pub")).unwrap();
    let mut fields = other.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}",
        shared().ssh_port,
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    site.set("BLUEGREEN_KNOWN_HOSTS", &line);
    let run = site.deploy("v1");
    run.code(2);
    let last = run.last_line();
    assert!(
        last.contains("host key verification of 127.0.0.1"),
        "{last}"
    );
    assert_eq!(
        last.matches("SHA256:").count(),
        2,
        "both fingerprints: {last}"
    );
    assert!(!site.state_dir.exists());

    // Pinning by the right fingerprint works; a wrong one is refused the same way.
    let real = crate::support::sh(
        std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(shared().dir.join("host_ed25519.pub")),
    );
    let fingerprint = real.split_whitespace().nth(1).unwrap().to_owned();
    site.set("BLUEGREEN_KNOWN_HOSTS", "");
    site.set("BLUEGREEN_HOST_FINGERPRINT", &fingerprint);
    site.run(&["status"]).success();
    let wrong = crate::support::sh(
        std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(dir.join("k.pub")),
    );
    site.set(
        "BLUEGREEN_HOST_FINGERPRINT",
        wrong.split_whitespace().nth(1).unwrap(),
    );
    let refused = site.run(&["status"]);
    refused.code(2);
    assert!(
        refused.last_line().contains(&fingerprint),
        "shows what the server presents: {}",
        refused.last_line()
    );
}
