//! `build` and `ship` against the real registry (htpasswd auth): tags, digests, the token's
//! whereabouts, and a Java app from source to a verified live color.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{java, shared, Run, Site, REGISTRY_TOKEN, REGISTRY_USER};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// The digest the registry holds for `name:tag` (its own API, with auth), if any.
fn registry_digest(name: &str, tag: &str) -> Option<String> {
    let url = format!("http://{}/v2/{name}/manifests/{tag}", shared().registry);
    let response = reqwest::blocking::Client::new()
        .head(url)
        .basic_auth(REGISTRY_USER, Some(REGISTRY_TOKEN))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .unwrap();
    if !response.status().is_success() {
        return None;
    }
    response
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn copy_fixture(name: &str, into: &std::path::Path) {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    crate::support::sh(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(into),
    );
}

/// Runs the binary while sampling every process's argv; returns the run and what was seen.
fn run_sampling_argv(site: &Site, args: &[&str], secrets: &[&str]) -> (Run, usize) {
    let mut child = site
        .bluegreen(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut samples = 0;
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    while child.try_wait().unwrap().is_none() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                for secret in secrets {
                    assert!(
                        !text.contains(secret),
                        "a secret is on the argv of pid {:?}: {text}",
                        entry.file_name()
                    );
                }
            }
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (run, samples)
}

/// Gives `site` a build context copied from `fixture`, pushing to `{registry}/{group}/{app}`;
/// returns the context and the repository name in the registry.
fn use_sources(
    site: &mut Site,
    fixture: &str,
    group: &str,
    build_command: &str,
) -> (std::path::PathBuf, String) {
    let context = site.dir.join("src");
    std::fs::create_dir_all(&context).unwrap();
    copy_fixture(fixture, &context);
    if fixture == "demo-app" {
        std::fs::copy("/bin/busybox", context.join("busybox")).unwrap();
    }
    let name = format!("{group}/{}", site.app);
    site.set("BLUEGREEN_IMAGE", &format!("{}/{name}", shared().registry));
    site.set("BLUEGREEN_CONTEXT", context.to_str().unwrap());
    site.set("BLUEGREEN_BUILD_COMMAND", build_command);
    (context, name)
}

#[test]
fn build_pushes_both_tags_at_the_printed_digest_without_the_token_on_any_argv() {
    let mut site = Site::new("build");
    let (_, name) = use_sources(&mut site, "demo-app", "build", "none");
    site.set("BLUEGREEN_BUILD_ARGS", "VERSION=built");
    site.set("GITHUB_SHA", SHA);
    // build needs no server settings
    site.set("BLUEGREEN_HOST", "");
    let (run, samples) = run_sampling_argv(&site, &["build"], &[REGISTRY_TOKEN]);
    run.success();
    assert!(samples > 10, "argv was sampled only {samples} times");
    assert!(!run.stdout.contains(REGISTRY_TOKEN) && !run.stderr.contains(REGISTRY_TOKEN));
    let printed = run.stdout.trim().lines().last().unwrap();
    let digest = printed.split_once('@').map(|(_, d)| d.to_owned()).unwrap();
    assert_eq!(printed, format!("{}/{name}@{digest}", shared().registry));
    assert_eq!(
        registry_digest(&name, "dev").as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        registry_digest(&name, "dev-0123456").as_deref(),
        Some(digest.as_str())
    );
    let labels = crate::support::sh(std::process::Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        printed,
    ]));
    assert!(
        labels.contains(&format!("\"org.opencontainers.image.revision\":\"{SHA}\"")),
        "{labels}"
    );
    assert!(
        labels.contains("org.opencontainers.image.created"),
        "{labels}"
    );
}

/// `docker login` comes before `docker build`, so a `FROM` on a private image of the registry
/// builds (the machine's own docker has no credentials for the sandbox registry).
#[test]
fn a_private_base_image_builds_because_the_login_comes_first() {
    use crate::support::{docker, sh};
    let mut site = Site::new("privatebase");
    let (context, name) = use_sources(&mut site, "demo-app", "build", "none");
    let base = format!("{}/private/{}-base:1", shared().registry, site.app);
    sh(docker(&shared().dir).args(["tag", &shared().image("v2"), &base]));
    sh(docker(&shared().dir).args(["push", "--quiet", &base]));
    // Only the registry has it now: the build must pull it, with credentials.
    sh(std::process::Command::new("docker").args(["image", "rm", &base]));
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nRUN echo on-the-private-base > /base-note\n"),
    )
    .unwrap();
    site.set("GITHUB_SHA", SHA);
    site.set("BLUEGREEN_HOST", "");
    let run = site.run(&["build"]);
    run.success();
    let login = run.stderr.find("==> log in to").unwrap();
    assert!(login < run.stderr.find("==> build the image").unwrap());
    assert!(registry_digest(&name, "dev-0123456").is_some());
    let version = sh(std::process::Command::new("docker").args([
        "run",
        "--rm",
        "--entrypoint",
        "/bin/cat",
        &format!("{}/{name}:dev", shared().registry),
        "/version",
        "/base-note",
    ]));
    assert_eq!(
        version.split_whitespace().collect::<Vec<_>>(),
        ["v2", "on-the-private-base"]
    );
}

#[test]
fn a_wrong_token_fails_the_build_clearly_and_pushes_nothing() {
    let mut site = Site::new("badtoken");
    let (_, name) = use_sources(&mut site, "demo-app", "build", "none");
    site.set("BLUEGREEN_DOCKER_TOKEN", "wrong-token-123");
    site.set("GITHUB_SHA", SHA);
    let run = site.run(&["ship"]);
    run.code(1);
    assert!(
        run.last_line().contains(&format!(
            "docker login to {} as {REGISTRY_USER} failed",
            shared().registry
        )),
        "{}",
        run.last_line()
    );
    assert!(
        run.last_line()
            .contains("nothing was built, pushed or deployed"),
        "{}",
        run.last_line()
    );
    assert!(!run.stderr.contains("wrong-token-123"));
    assert_eq!(registry_digest(&name, "dev"), None);
    assert!(!site.switch_file.exists(), "nothing may be deployed");
}

/// `ship` finds what would fail after a long build before it starts: a missing Dockerfile and
/// an SSH key the server refuses (exit 2), with the jar build never run.
#[test]
fn ship_checks_the_dockerfile_and_the_ssh_login_before_any_build() {
    let mut site = Site::new("preflight");
    let (context, _) = use_sources(&mut site, "demo-app", "build", "touch jar-build-ran");
    site.set("GITHUB_SHA", SHA);
    site.set("BLUEGREEN_DOCKERFILE", "Dockerfile.missing");
    let missing = site.run(&["ship"]);
    missing.code(2);
    assert!(
        missing.last_line().starts_with("error: dockerfile:")
            && missing
                .last_line()
                .contains("Dockerfile.missing does not exist"),
        "{}",
        missing.last_line()
    );
    assert!(!context.join("jar-build-ran").exists(), "the jar was built");

    site.env.retain(|(name, _)| name != "BLUEGREEN_DOCKERFILE");
    let stranger = site.dir.join("stranger_key");
    crate::support::sh(std::process::Command::new("ssh-keygen").args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        stranger.to_str().unwrap(),
    ]));
    site.set("BLUEGREEN_KEY_FILE", stranger.to_str().unwrap());
    let refused = site.run(&["ship"]);
    refused.code(2);
    assert!(
        refused
            .last_line()
            .contains("the server refused the SSH key"),
        "{}",
        refused.last_line()
    );
    assert!(!context.join("jar-build-ran").exists(), "the jar was built");
}

#[test]
fn a_failing_jar_build_shows_its_output_and_pushes_nothing() {
    let mut site = Site::new("badjar");
    let (context, _) = use_sources(&mut site, "java-app", "java", "./build.sh");
    std::fs::write(context.join("src/App.java"), "this is not java").unwrap();
    site.set("GITHUB_SHA", SHA);
    let run = site.run(&["ship"]);
    run.code(1);
    assert!(
        run.last_line().contains("build the jar failed"),
        "{}",
        run.last_line()
    );
    assert!(
        run.stderr.contains("App.java"),
        "the compiler's output is shown: {}",
        run.stderr
    );
    assert!(!site.switch_file.exists());
}

#[test]
fn ship_takes_a_java_app_from_source_to_a_verified_live_color() {
    java::jre_base_image();
    let mut site = Site::new("ship");
    use_sources(&mut site, "java-app", "java", "./build.sh");
    site.set("BLUEGREEN_HEALTH_EXPECT", "\"UP\"");
    site.set("GITHUB_SHA", SHA);
    site.set("APP_VERSION", "1.0.0");
    let key = std::fs::read_to_string(&shared().user_key).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_owned();
    let (first, _) = run_sampling_argv(&site, &["ship"], &[REGISTRY_TOKEN, &key_line]);
    first.success();
    assert_eq!(site.served(), Some(("1.0.0".into(), "blue".into())));
    assert!(
        first.stderr.contains("built build/libs/app.jar (1.0.0)"),
        "{}",
        first.stderr
    );
    for secret in [REGISTRY_TOKEN, key_line.as_str()] {
        assert!(
            !first.stdout.contains(secret) && !first.stderr.contains(secret),
            "a secret reached the output"
        );
    }
    site.set("APP_VERSION", "2.0.0");
    site.set("GITHUB_SHA", "fedcba9876543210fedcba9876543210fedcba98");
    let second = site.run(&["ship"]);
    second.success();
    assert_eq!(site.served(), Some(("2.0.0".into(), "green".into())));
    assert!(
        second
            .stderr
            .contains("served by green (named in the response)"),
        "{}",
        second.stderr
    );
    let status = site.status_json();
    assert_eq!(
        status["live_image"].as_str().unwrap(),
        second.stdout.trim().lines().last().unwrap()
    );
    let timing = second
        .stderr
        .lines()
        .find(|l| l.contains("deployed "))
        .unwrap();
    let built = second
        .stderr
        .lines()
        .find(|l| l.contains("built in "))
        .unwrap();
    eprintln!("ship timings: {built} / {timing}");
}
