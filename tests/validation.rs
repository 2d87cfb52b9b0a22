//! Settings a server would misread are refused before any connection: exit 2, naming the
//! setting (issue 21's low cases).

use crate::support::{shared, Run, Site};

/// Runs `deploy` with `overrides`; expects exit 2 naming `setting` with `words` in its line,
/// and nothing on the server touched.
fn rejects(site: &Site, overrides: &[(&str, &str)], setting: &str, words: &str) -> Run {
    let mut command = site.bluegreen(&["deploy", "--image-ref", &shared().image("v1")]);
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
