//! The first steps of a new user, each run with the real binary in a fresh directory: `init`
//! says what it found and what `ship` needs, `doctor` on the untouched file names the
//! placeholders, `ship` fails its local checks before connecting anywhere, and a failed build
//! ends in a short readable line. No server is needed (nothing here gets that far).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{binary, Run};

const SHA: &str = "3333333333333333333333333333333333333333";

/// A fresh empty directory in the temp dir (emptied first).
fn fresh(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("bluegreen-newcomer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary in `dir` with a clean environment (PATH and HOME only) plus `env`.
fn bluegreen(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(binary());
    command.args(args).current_dir(dir).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    command.envs(env.iter().copied());
    Run::from(command.output().unwrap())
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status;
    assert!(status.success(), "git {args:?}");
}

/// A throwaway SSH key (the settings need one before any local check runs).
fn key(dir: &Path) -> String {
    let path = dir.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path.to_str().unwrap().to_owned()
}

#[test]
fn init_says_what_it_really_found_and_that_ship_needs_a_commit() {
    let maven = fresh("init-maven");
    std::fs::write(maven.join("pom.xml"), "<project/>").unwrap();
    let run = bluegreen(&maven, &["init"], &[]);
    run.success();
    assert!(
        run.stdout.contains(
            "found pom.xml but no ./mvnw, so Maven must be installed where bluegreen builds: \
             build_command auto runs `mvn -B package -DskipTests`"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("./mvnw package"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "this is not a git checkout with a commit: `bluegreen ship` and `build` need one"
        ),
        "{}",
        run.stdout
    );

    let checkout = fresh("init-git");
    git(&checkout, &["init", "-q"]);
    std::fs::write(checkout.join("gradlew"), "").unwrap();
    git(&checkout, &["add", "gradlew"]);
    git(&checkout, &["commit", "-q", "-m", "first"]);
    let run = bluegreen(&checkout, &["init"], &[]);
    run.success();
    assert!(
        run.stdout.contains(
            "found ./gradlew: build_command auto runs `./gradlew --no-daemon build -x test`"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("`bluegreen ship` labels the image with this checkout's commit"),
        "{}",
        run.stdout
    );
}

#[test]
fn doctor_on_inits_untouched_file_names_the_placeholders() {
    let dir = fresh("doctor");
    bluegreen(&dir, &["init"], &[]).success();
    let run = bluegreen(&dir, &["doctor"], &[]);
    run.code(2);
    assert!(
        run.stderr.contains(
            "host: still `REPLACE-ME.example.com`, the placeholder `bluegreen init` wrote; set \
             it to your server's address"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("image: still `REPLACE-ME/"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("ssh-keyscan REPLACE-ME"),
        "{}",
        run.stderr
    );
    assert!(
        run.last_line()
            .contains("invalid settings (host, image, key, known_hosts)"),
        "{}",
        run.last_line()
    );
}

#[test]
fn ship_fails_its_local_checks_before_connecting() {
    let dir = fresh("ship");
    let key = key(&dir);
    // Port 1 on loopback: nothing listens; a connection attempt would say so.
    let env = [
        ("BLUEGREEN_HOST", "127.0.0.1"),
        ("BLUEGREEN_PORT", "1"),
        ("BLUEGREEN_IMAGE", "127.0.0.1:1/newcomer/app"),
        ("BLUEGREEN_KEY_FILE", key.as_str()),
        ("BLUEGREEN_ACCEPT_NEW_HOST_KEY", "true"),
        ("BLUEGREEN_BUILD_COMMAND", "none"),
    ];
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    let no_commit = bluegreen(&dir, &["ship"], &env);
    no_commit.code(2);
    assert!(
        !no_commit.stderr.contains("connect to"),
        "{}",
        no_commit.stderr
    );
    assert!(
        no_commit
            .last_line()
            .contains("is not in a git checkout with a commit and GITHUB_SHA is not set"),
        "{}",
        no_commit.last_line()
    );

    std::fs::remove_file(dir.join("Dockerfile")).unwrap();
    let mut with_sha = env.to_vec();
    with_sha.push(("GITHUB_SHA", SHA));
    let no_dockerfile = bluegreen(&dir, &["ship"], &with_sha);
    no_dockerfile.code(2);
    assert!(
        !no_dockerfile.stderr.contains("connect to"),
        "{}",
        no_dockerfile.stderr
    );
    assert!(
        no_dockerfile.last_line().contains("dockerfile: ")
            && no_dockerfile.last_line().contains("does not exist"),
        "{}",
        no_dockerfile.last_line()
    );
}

#[test]
fn a_failed_build_ends_in_a_short_readable_line_with_its_last_output_lines() {
    let dir = fresh("build");
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    // A build that prints colour, a progress line redrawn with CRs, 40 lines of noise, then
    // the error, the way Gradle and javac do on a terminal.
    let script = "printf '\\033[1m> Task :compileJava\\033[0m\\n'; \
                  printf '10%%\\r50%%\\r100%%\\n'; \
                  i=0; while [ $i -lt 40 ]; do echo \"noise line $i $(printf 'x%.0s' $(seq 30))\"; i=$((i+1)); done; \
                  printf '\\033[31msrc/App.java:3: error: cannot find symbol\\033[0m\\n'; \
                  echo '1 error'; exit 3";
    std::fs::write(dir.join("build.sh"), script).unwrap();
    let env = [
        ("BLUEGREEN_IMAGE", "127.0.0.1:1/newcomer/app"),
        ("BLUEGREEN_BUILD_COMMAND", "sh build.sh"),
        ("GITHUB_SHA", SHA),
    ];
    let run = bluegreen(&dir, &["build"], &env);
    run.code(1);
    let last = run.last_line();
    assert_eq!(
        last,
        "error: build the jar failed (exit 3): src/App.java:3: error: cannot find symbol; \
         nothing was pushed or deployed; its last output lines are above"
    );
    assert!(!run.stderr.contains('\u{1b}'), "an escape reached the log");
    assert!(!run.stderr.contains("[0m") && !run.stderr.contains("[31m"));
    assert!(run.stderr.contains("    | 100%\n"), "{}", run.stderr);
    // The last 15 lines again, after the streamed output, readable one per line.
    let again = run
        .stderr
        .split("the last 15 lines of the output of `build the jar`:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no tail block: {}", run.stderr));
    let quoted: Vec<&str> = again.lines().filter(|l| l.starts_with("    | ")).collect();
    assert_eq!(quoted.len(), 15, "{again}");
    assert_eq!(
        quoted[13],
        "    | src/App.java:3: error: cannot find symbol"
    );
    assert_eq!(quoted[14], "    | 1 error");
}

/// The action's `ship` too: a missing Dockerfile fails before the `connect` group opens.
#[test]
fn the_actions_ship_fails_its_local_checks_before_connecting() {
    let dir = fresh("action-ship");
    let key = std::fs::read_to_string(key(&dir)).unwrap();
    let env = [
        ("INPUT_HOST", "127.0.0.1"),
        ("INPUT_PORT", "1"),
        ("INPUT_IMAGE", "127.0.0.1:1/newcomer/app"),
        ("INPUT_KEY", key.as_str()),
        ("INPUT_ACCEPT_NEW_HOST_KEY", "true"),
        ("INPUT_BUILD_COMMAND", "none"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", SHA),
    ];
    let run = bluegreen(&dir, &["action"], &env);
    run.code(2);
    assert!(!run.stderr.contains("connect to"), "{}", run.stderr);
    assert!(
        run.last_line().starts_with("::error::dockerfile: "),
        "{}",
        run.last_line()
    );
}
