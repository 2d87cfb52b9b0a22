//! Verification through nginx after the switch, on the real sandbox (process mode, a python
//! app): a new color that is healthy on its port but answers 5xx to what nginx sends it is
//! caught within ~1 s of 5xx, traffic goes back, and the line says "answered 5xx" — not that
//! the switch was not taken, and not that the site is down.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::Site;

/// A process-mode site running `tests/fixtures/python-app.py` (the artifact) as VERSION.
fn python_site(name: &str) -> Site {
    let mut site = Site::new(name);
    site.env.retain(|(key, _)| {
        !matches!(
            key.as_str(),
            "BLUEGREEN_IMAGE"
                | "BLUEGREEN_REGISTRY"
                | "BLUEGREEN_DOCKER_USERNAME"
                | "BLUEGREEN_DOCKER_TOKEN"
        )
    });
    let verify = format!("http://127.0.0.1:{}/", site.nginx_port);
    site.set("BLUEGREEN_VERIFY_URL", &verify);
    site
}

/// Deploys `version` of the app (an artifact of its own, so each version is a new release).
fn deploy(site: &mut Site, version: &str) -> crate::support::Run {
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python-app.py");
    let artifact = site.dir.join(format!("app-{version}.py"));
    let text = std::fs::read_to_string(source).unwrap();
    std::fs::write(&artifact, format!("{text}\n# {version}\n")).unwrap();
    site.set("BLUEGREEN_ARTIFACT", &artifact.display().to_string());
    site.set(
        "BLUEGREEN_RUN_COMMAND",
        &format!("exec python3 {{artifact}} {{port}} {version}"),
    );
    site.run(&["deploy"])
}

/// Stops the colors' process groups when the test ends.
struct Processes(std::path::PathBuf);

impl Drop for Processes {
    fn drop(&mut self) {
        for color in ["blue", "green"] {
            let file = self.0.join(format!("{color}.pid"));
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .output();
            }
        }
    }
}

#[test]
fn a_new_color_answering_5xx_through_nginx_fails_fast_and_goes_back() {
    let mut site = python_site("verify5xx");
    let _processes = Processes(site.state_dir.clone());
    deploy(&mut site, "v1").success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));

    // A user's view: one request through nginx every 20 ms, each 5xx timed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let user = std::thread::spawn({
        let stop = stop.clone();
        let url = format!("http://127.0.0.1:{}/", site.nginx_port);
        move || {
            let client = reqwest::blocking::Client::new();
            let mut failed = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(response) = client.get(&url).timeout(Duration::from_secs(5)).send() {
                    if response.status().is_server_error() {
                        failed.push(Instant::now());
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            failed
        }
    });
    site.set("BLUEGREEN_ENV", "MODE=bad");
    let run = deploy(&mut site, "v2");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = user.join().unwrap();
    run.code(1);
    let last = run.last_line();
    assert!(last.contains("green answered 5xx through nginx"), "{last}");
    assert!(last.contains("blue still serves traffic"), "{last}");
    assert!(
        !last.contains("the site is down") && !last.contains("was not taken"),
        "{last}"
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    let span = match (failed.first(), failed.last()) {
        (Some(first), Some(last)) => last.duration_since(*first),
        _ => panic!("the user saw no 5xx: {last}"),
    };
    // The target is 2 s of 5xx (1.5–2.0 s measured at a load average of 10); a loaded 2-core
    // machine stretches every round trip, so the test allows 5 s: before the fix users got
    // 5xx for 10 s, so it still fails without it.
    eprintln!("users got 5xx for {span:?}");
    assert!(
        span <= Duration::from_secs(5),
        "users got 5xx for {span:?}: {last}"
    );
}
