//! The bake window against the real server: a new color that answers 500 to every second
//! request through nginx passes health and verification, then is switched back during the
//! bake (exit 1, the old color serves, state, history and the impact count say so); a healthy
//! one passes and the summary reports what the probe requests got.

use crate::support::Site;

fn baking_site(name: &str) -> Site {
    let mut site = Site::new(name);
    site.set("BLUEGREEN_BAKE_TIME", "2s");
    let verify = format!("http://127.0.0.1:{}/cgi-bin/flaky", site.nginx_port);
    site.set("BLUEGREEN_VERIFY_URL", &verify);
    site
}

#[test]
fn a_new_color_failing_half_its_requests_is_switched_back_during_the_bake() {
    let mut site = baking_site("bake-back");
    site.deploy("v1").success();
    site.set("BLUEGREEN_ENV", "DEMO_MODE=flaky");
    let failed = site.deploy("v2");
    failed.code(1);
    let last = failed.last_line();
    assert!(last.contains("green answered 5xx to "), "{last}");
    assert!(
        last.contains("during the bake") && last.contains("above bake_max_error_rate 1%"),
        "{last}"
    );
    assert!(last.contains("blue still serves traffic"), "{last}");
    // The impact count says it too: failed probe requests, all of them green's.
    let (failed_requests, requests) = failed.impact().unwrap_or_else(|| panic!("{last}"));
    assert!(failed_requests > 0 && requests >= failed_requests, "{last}");
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_eq!(site.container_state("blue").as_deref(), Some("running"));
    assert_ne!(site.container_state("green").as_deref(), Some("running"));

    let status = site.status_json();
    assert_eq!(status["live_color"], "blue", "{status}");
    let newest = &status["history"][0];
    assert_eq!(newest["result"], "failed", "{status}");
    assert!(
        newest["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("during the bake"),
        "{status}"
    );
    let impact = &newest["impact"];
    let counted = |key: &str| impact[key].as_u64().unwrap_or(0);
    assert_eq!(counted("requests"), requests, "{status}");
    assert_eq!(
        counted("non_2xx") + counted("unanswered"),
        failed_requests,
        "{status}"
    );
    assert!(
        impact["green"]["server_errors"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    assert_eq!(
        impact["blue"]["non_2xx"].as_u64().unwrap_or(0),
        0,
        "{status}"
    );
}

#[test]
fn a_healthy_new_color_passes_the_bake_and_reports_its_counts() {
    let site = baking_site("bake-pass");
    site.deploy("v1").success();
    let second = site.deploy("v2");
    second.success();
    assert!(
        second.stderr.contains("baked ") && second.stderr.contains("0 failed of "),
        "{}",
        second.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    assert_eq!(site.container_state("blue").as_deref(), Some("exited"));
}

/// The old color dies during the bake of a failing new color: switching back would point
/// nginx at nothing and stopping the new color would take the site down. The deploy keeps
/// green serving, stops nothing, exits 1 and says so — never that the dead blue "still serves".
/// Before: nginx was pointed back at the dead blue, green was stopped, everything got 502.
#[test]
fn a_failed_bake_never_switches_back_to_an_old_color_that_died() {
    let mut site = baking_site("bake-dead-old");
    site.set("BLUEGREEN_BAKE_TIME", "4s");
    site.deploy("v1").success();
    site.set("BLUEGREEN_ENV", "DEMO_MODE=flaky");
    let killer = std::thread::spawn({
        let switch_file = site.switch_file.clone();
        let green = format!("127.0.0.1:{};", site.green_port);
        let blue = format!("{}-blue", site.app);
        move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !std::fs::read_to_string(&switch_file).is_ok_and(|text| text.contains(&green)) {
                assert!(std::time::Instant::now() < deadline, "never switched");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            crate::support::sh(std::process::Command::new("docker").args(["kill", &blue]));
        }
    });
    let failed = site.deploy("v2");
    killer.join().unwrap();
    failed.code(1);
    let last = failed.last_line();
    assert!(
        last.contains("green still serves traffic: traffic was not switched back because")
            && last.contains("nothing was stopped"),
        "{last}"
    );
    assert!(!last.contains("blue still serves"), "{last}");
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    assert_eq!(site.container_state("green").as_deref(), Some("running"));
    assert_eq!(site.status_json()["live_color"], "green");
}
