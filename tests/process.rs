//! Process mode (seeds 001/004: `java -jar app.jar --server.port=8081` on the host, no Docker):
//! a real JVM app's jar is uploaded over SSH and each color runs as a supervised process;
//! v1 → v2 under load with 0 non-2xx, the unchanged redeploy, the rollback to the kept
//! release, and a release that exits at start (exit 1, the old color still serves).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{load::Load, sh, Site};

const RUN_COMMAND: &str = "java -Xshare:auto -jar {artifact} --server.port={port}";

/// Compiles the demo and packs `DIR/VERSION/app.jar` with its version inside.
pub(crate) fn build_jar(dir: &Path, version: &str) -> PathBuf {
    let out = dir.join(format!("jar-{version}"));
    let classes = out.join("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process-app/App.java");
    sh(Command::new("javac")
        .args(["--release", "17", "-d"])
        .arg(&classes)
        .arg(source));
    std::fs::write(classes.join("version.txt"), version).unwrap();
    std::fs::write(out.join("manifest.txt"), "Main-Class: App\n").unwrap();
    let jar = out.join("app.jar");
    sh(Command::new("jar")
        .args(["--create", "--file"])
        .arg(&jar)
        .arg("--manifest")
        .arg(out.join("manifest.txt"))
        .arg("-C")
        .arg(&classes)
        .arg("."));
    jar
}

/// A site in process mode: no image, no registry, no Docker settings at all.
pub(crate) fn process_site(name: &str) -> Site {
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
    site.set("BLUEGREEN_RUN_COMMAND", RUN_COMMAND);
    site
}

/// Stops the colors' process groups when a test ends, passing or not.
pub(crate) struct Processes(pub(crate) PathBuf);

impl Drop for Processes {
    fn drop(&mut self) {
        for color in ["blue", "green"] {
            if let Some(pid) = supervisor_of(&self.0, color) {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{pid}")])
                    .output();
            }
        }
    }
}

/// The supervisor's pid, the first word of `{color}.pid` (`PID START BOOT`).
fn supervisor_of(state_dir: &Path, color: &str) -> Option<String> {
    let text = std::fs::read_to_string(state_dir.join(format!("{color}.pid"))).ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

pub(crate) fn release_of(jar: &Path) -> String {
    let sum = sh(Command::new("sha256sum").arg(jar));
    format!("release:{}", &sum[..12])
}

pub(crate) fn deploy(site: &mut Site, jar: &Path) -> crate::support::Run {
    site.set("BLUEGREEN_ARTIFACT", &jar.display().to_string());
    site.run(&["deploy"])
}

#[test]
fn a_jar_is_deployed_swapped_under_load_and_rolled_back() {
    let mut site = process_site("proc");
    let _processes = Processes(site.state_dir.clone());
    let (v1, v2) = (build_jar(&site.dir, "v1"), build_jar(&site.dir, "v2"));

    let first = deploy(&mut site, &v1);
    first.success();
    assert_eq!(first.stdout.trim(), release_of(&v1));
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));

    site.set("BLUEGREEN_ARTIFACT", &v2.display().to_string());
    let plan = site.run(&["plan"]);
    plan.success();
    assert!(
        plan.stdout.contains("bluegreen-upload-release")
            && plan.stdout.contains("bluegreen-start-process")
            && !plan.stdout.contains("docker"),
        "{}",
        plan.stdout
    );

    let load = Load::start(site.nginx_port, 4);
    deploy(&mut site, &v2).success();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    // The old color's process was stopped (its pid file goes with it).
    assert!(!site.state_dir.join("blue.pid").exists());
    let again = deploy(&mut site, &v2);
    again.success();
    assert!(again.stderr.contains("already live"), "{}", again.stderr);

    let rollback = site.run(&["rollback"]);
    rollback.success();
    let report = load.finish();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert!(!site.state_dir.join("green.pid").exists());
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.ok > 50, "{report:?}");

    let status = site.status_json();
    assert_eq!(status["live_color"], "blue");
    assert_eq!(status["live_image"], release_of(&v1).as_str());
    let releases = std::fs::read_dir(site.state_dir.join("releases"))
        .unwrap()
        .count();
    assert_eq!(releases, 2);

    let doctor = site.run(&["doctor"]);
    let own = format!("✓ blue port {}: blue's process (pid", site.blue_port);
    assert!(
        doctor.stdout.contains("✓ process mode, ") && doctor.stdout.contains(&own),
        "{}\n{}",
        doctor.stdout,
        doctor.stderr
    );
    let plan = site.run(&["plan", "--image-ref", &release_of(&v2)]);
    plan.success();
    assert!(
        plan.stdout.contains(&format!(
            "bluegreen-start-process {} green",
            site.state_dir.display()
        )) && plan.stdout.contains(&release_of(&v2)[8..])
            && !plan.stdout.contains("bluegreen-upload-release"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_release_that_exits_at_start_fails_and_the_old_one_serves() {
    let mut site = process_site("proccrash");
    let _processes = Processes(site.state_dir.clone());
    let (v1, v2) = (build_jar(&site.dir, "v1"), build_jar(&site.dir, "v2"));
    deploy(&mut site, &v1).success();

    site.set(
        "BLUEGREEN_RUN_COMMAND",
        &format!("{RUN_COMMAND} --fail-at-start"),
    );
    let load = Load::start(site.nginx_port, 2);
    let failed = deploy(&mut site, &v2);
    let report = load.finish();
    failed.code(1);
    let last = failed.last_line();
    assert!(
        last.contains("health check of green") && last.contains("blue still serves traffic"),
        "{last}"
    );
    assert!(
        failed.stderr.contains("failing at start as asked"),
        "{}",
        failed.stderr
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_eq!(report.non_2xx, 0, "{report:?}");
}

/// Supervised: the live color's app killed outright is started again by its supervisor, and
/// the restart is counted (a deploy would see the color as restarting).
#[test]
fn a_crashed_live_app_is_restarted_by_its_supervisor() {
    let mut site = process_site("procsuper");
    let _processes = Processes(site.state_dir.clone());
    let v1 = build_jar(&site.dir, "v1");
    deploy(&mut site, &v1).success();
    let supervisor: i32 = supervisor_of(&site.state_dir, "blue")
        .unwrap()
        .parse()
        .unwrap();
    let java = sh(Command::new("pgrep").args(["-g", &supervisor.to_string(), "java"]));
    let java: i32 = java.lines().next().unwrap().trim().parse().unwrap();
    unsafe { libc::kill(java, libc::SIGKILL) };
    let restarts = site.state_dir.join("blue.restarts");
    crate::support::wait_until(
        "the supervisor counts the exit",
        std::time::Duration::from_secs(10),
        || std::fs::read_to_string(&restarts).is_ok_and(|text| text.starts_with("1 ")),
    );
    crate::support::wait_until(
        "the restarted app serves again",
        std::time::Duration::from_secs(30),
        || site.served() == Some(("v1".into(), "blue".into())),
    );
    let counted = std::fs::read_to_string(site.state_dir.join("blue.restarts")).unwrap();
    assert_eq!(counted.trim(), "1 137", "restarts and the last exit code");
    let log = std::fs::read_to_string(site.state_dir.join("blue.log")).unwrap();
    assert!(
        log.contains("the app exited with code 137; restart 1"),
        "{log}"
    );
}

/// Seeds 001/004: the textbook script left `java -jar app.jar --server.port=8081` running and
/// nginx pointing at it. The first process-mode deploy adopts it as the old blue: it serves
/// until green is verified, then it is stopped (SIGTERM), with 0 failed requests.
#[test]
fn the_jar_a_seed_script_started_is_adopted_then_stopped() {
    let mut site = process_site("procseed");
    let _processes = Processes(site.state_dir.clone());
    let (v0, v1) = (build_jar(&site.dir, "v0"), build_jar(&site.dir, "v1"));
    let mut old = Command::new("java")
        .arg("-jar")
        .arg(&v0)
        .arg(format!("--server.port={}", site.blue_port))
        .env("BLUEGREEN_COLOR", "blue")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_for_port(site.blue_port, "the seed's java");
    site.point_nginx_at_blue_like_an_old_script();
    assert_eq!(site.served(), Some(("v0".into(), "blue".into())));

    let load = Load::start(site.nginx_port, 4);
    let run = deploy(&mut site, &v1);
    run.success();
    let report = load.finish();
    assert!(
        run.stderr
            .contains(&format!("process java (pid {})", old.id())),
        "{}",
        run.stderr
    );
    assert_eq!(site.served(), Some(("v1".into(), "green".into())));
    let status = crate::support::exit_within(&mut old, std::time::Duration::from_secs(10));
    assert_eq!(status.code(), Some(143), "stopped by SIGTERM: {status:?}");
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.ok > 20, "{report:?}");
}

/// `ship` in process mode: build_command makes the jar, the one jar in build/libs is the
/// artifact (found without an `artifact` setting); no image is built, nothing is pushed;
/// `env` and `secret_env` reach the app (the secret on stdin, never printed).
#[test]
fn ship_builds_the_jar_and_deploys_it_without_docker() {
    let mut site = process_site("procship");
    let _processes = Processes(site.state_dir.clone());
    let context = site.dir.join("src");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process-app/App.java"),
        context.join("App.java"),
    )
    .unwrap();
    site.set("BLUEGREEN_CONTEXT", context.to_str().unwrap());
    site.set(
        "BLUEGREEN_BUILD_COMMAND",
        "mkdir -p build/classes build/libs && javac --release 17 -d build/classes App.java \
         && echo shipped > build/classes/version.txt && printf 'Main-Class: App\\n' > build/m.txt \
         && jar --create --file build/libs/app.jar --manifest build/m.txt -C build/classes .",
    );
    site.set("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567");
    site.set("BLUEGREEN_ENV", "GREETING=hello there");
    site.set("BLUEGREEN_SECRET_ENV", "DB_PASSWORD=s3cret-'value");
    let run = site.run(&["ship"]);
    run.success();
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));
    let log = std::fs::read_to_string(site.state_dir.join("blue.log")).unwrap();
    assert!(
        log.contains("GREETING=hello there DB_PASSWORD length 13"),
        "{log}"
    );
    let jar = context.join("build/libs/app.jar");
    assert_eq!(
        run.stdout.trim().lines().last(),
        Some(release_of(&jar).as_str())
    );
    assert!(!run.stderr.contains("docker"), "{}", run.stderr);
    assert_eq!(site.served(), Some(("shipped".into(), "blue".into())));
}

/// A request in flight across the switch whose SYN the old color's full queue dropped: TCP
/// sends it again, to the old color, seconds later. The drain must wait for that attempt (it
/// shows only in the connection tracking table: nginx dialed the nftables switch's service
/// port) and stop the old color only after answering it. Before, the drain saw no connection,
/// stopped the old color, and the retried SYN met a closed port: nginx answered 502.
///
/// How the attempt is made: blue's JVM is frozen (SIGSTOP), its accept queue (backlog 64)
/// filled with connections whose clients then close, and one request sent through nginx. It is
/// resumed as soon as the DNAT rule points at green, so the retried SYN can only be answered
/// by blue if blue is still running then.
#[test]
fn a_request_whose_syn_the_old_color_dropped_is_answered_by_it_not_reset() {
    let mut site = process_site("proc-syn");
    let service_port = site.use_nftables_switch();
    // TCP sends the SYN again 1, 3, 7, 15 and 31 s after the first: the drain must outlast
    // the gap between the switch and the next one.
    site.set("BLUEGREEN_DRAIN_TIMEOUT", "40s");
    let _processes = Processes(site.state_dir.clone());
    let (v1, v2) = (build_jar(&site.dir, "v1"), build_jar(&site.dir, "v2"));
    deploy(&mut site, &v1).success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));

    let blue = supervisor_of(&site.state_dir, "blue").unwrap();
    let signal = |name: &str| {
        sh(Command::new("kill").args(["-s", name, "--", &format!("-{blue}")]));
    };
    signal("STOP");
    let blue_addr = std::net::SocketAddr::from(([127, 0, 0, 1], site.blue_port));
    let mut queued = Vec::new();
    while let Ok(stream) =
        std::net::TcpStream::connect_timeout(&blue_addr, std::time::Duration::from_millis(300))
    {
        queued.push(stream);
        assert!(queued.len() < 500, "blue's accept queue never filled");
    }
    drop(queued);

    let nginx_port = site.nginx_port;
    let request = std::thread::spawn(move || {
        let output = Command::new("curl")
            .args(["-s", "--max-time", "70", "-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{nginx_port}/"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    });
    // nginx's attempt to the service port, its SYN dropped by blue's full queue.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let filter = format!("( dport = :{service_port} )");
    while sh(Command::new("ss").args(["-tnH", "state", "syn-sent", &filter]))
        .trim()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "nginx never tried blue"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let green_rule = format!("dnat to 127.0.0.1:{}", site.green_port);
    let resume = std::thread::spawn({
        let blue = blue.trim().to_owned();
        move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                let ruleset = sh(Command::new("nft").args(["list", "ruleset"]));
                if ruleset.contains(&green_rule) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            sh(Command::new("kill").args(["-s", "CONT", "--", &format!("-{blue}")]));
        }
    });
    let run = deploy(&mut site, &v2);
    resume.join().unwrap();
    run.success();
    let answer = request.join().unwrap();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    assert!(
        answer.ends_with("\n200") && answer.contains("v1"),
        "the request in flight across the switch got {answer:?}\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("blue drained in "), "{}", run.stderr);
}

/// Identity before any signal, with the real binary: a stale `green.pid` naming a live process
/// bluegreen never started (a reused pid) is not stopped by the deploy that replaces green; then
/// `blue.pid` naming live green's group (both files, one pid) does not make the deploy that
/// removes the idle blue kill the live app: 0 failed requests under load. Without the identity
/// check, the first deploy killed the unrelated process and the second killed green while blue
/// started (502s).
#[test]
fn a_pid_file_that_is_not_the_colors_own_is_never_signalled() {
    use std::os::unix::process::CommandExt;
    let mut site = process_site("procstale");
    let _processes = Processes(site.state_dir.clone());
    let (v1, v2) = (build_jar(&site.dir, "v1"), build_jar(&site.dir, "v2"));
    deploy(&mut site, &v1).success();

    let mut unrelated = Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(
        site.state_dir.join("green.pid"),
        format!("{}\n", unrelated.id()),
    )
    .unwrap();
    deploy(&mut site, &v2).success();
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "the unrelated process was signalled"
    );
    let _ = unrelated.kill();
    let _ = unrelated.wait();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));

    std::fs::copy(
        site.state_dir.join("green.pid"),
        site.state_dir.join("blue.pid"),
    )
    .unwrap();
    let load = Load::start(site.nginx_port, 4);
    let run = deploy(&mut site, &v1);
    let report = load.finish();
    run.success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_eq!(report.non_2xx, 0, "{report:?}\n{}", run.stderr);
}
