//! `bluegreen init`: a commented `bluegreen.yml` for the project in the current directory, then
//! the nginx snippet and the one-time server steps.

use std::path::Path;

use anyhow::Result;

use crate::failure::Failure;
use crate::printer::Printer;

/// How the project builds its jar, as far as the files here tell: the `build_command` the file
/// gets, and the sentence that says what was found and what `auto` will run.
#[derive(Debug, PartialEq)]
struct JarBuild {
    build_command: &'static str,
    said: String,
}

fn detect_build(dir: &Path) -> JarBuild {
    let has = |name: &str| dir.join(name).exists();
    if let Some(command) = crate::build::jar::jar_command(dir, "auto") {
        let found = if has("gradlew") {
            "./gradlew".to_owned()
        } else if has("mvnw") {
            "./mvnw".to_owned()
        } else {
            "pom.xml but no ./mvnw, so Maven must be installed where bluegreen builds".to_owned()
        };
        return JarBuild {
            build_command: "auto",
            said: format!(
                "found {found}: build_command auto runs `{}`",
                command.command.render(false)
            ),
        };
    }
    let gradle_file = ["build.gradle", "build.gradle.kts"]
        .into_iter()
        .find(|name| has(name));
    let said = match gradle_file {
        Some(file) => format!(
            "found {file} but no ./gradlew, which build_command auto needs: build_command is none; \
             add the wrapper (`gradle wrapper`) and set build_command: auto, or set it to your \
             build command"
        ),
        None => "found no ./gradlew, ./mvnw or pom.xml: build_command is none (set it when the \
                 jar needs a build)"
            .to_owned(),
    };
    JarBuild {
        build_command: "none",
        said,
    }
}

/// What `ship` and `build` need to name the commit they build, said before the first run.
fn commit_note(dir: &Path) -> String {
    let checkout = std::process::Command::new("git")
        .args(["rev-parse", "--verify", "HEAD"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if checkout {
        "`bluegreen ship` labels the image with this checkout's commit (GITHUB_SHA in a workflow)"
            .into()
    } else {
        "this is not a git checkout with a commit: `bluegreen ship` and `build` need one (they \
         label the image with the commit), or GITHUB_SHA set to the commit"
            .into()
    }
}

pub fn init(dir: &Path, printer: &Printer) -> Result<()> {
    let file = dir.join("bluegreen.yml");
    // `exists()` follows a symlink: a dangling one would be written through, creating a file
    // wherever it points. Any entry at all, link or not, is left alone.
    if let Ok(entry) = std::fs::symlink_metadata(&file) {
        let said = match std::fs::read_link(&file) {
            Ok(target) if entry.file_type().is_symlink() && !file.exists() => format!(
                "{} is a symlink to {}, which does not exist; nothing was written (remove the \
                 link, or create its target yourself)",
                file.display(),
                target.display()
            ),
            _ => format!(
                "{} already exists; nothing was written (remove it to start over)",
                file.display()
            ),
        };
        return Err(Failure::config(said).into());
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| {
            n.to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".to_owned());
    let build = detect_build(dir);
    write_new(&file, &settings_file(&name, &build))
        .map_err(|e| Failure::config(format!("cannot write {}: {e}", file.display())))?;
    printer.stdout(&format!(
        "wrote {} (edit host and image, then run `bluegreen doctor`)",
        file.display()
    ));
    printer.stdout(&build.said);
    printer.stdout(&commit_note(dir));
    if !dir.join("Dockerfile").exists() {
        printer.stdout("\nNo Dockerfile here. For a Spring Boot jar this one is enough:\n");
        printer.stdout(&indent(DOCKERFILE));
    }
    printer.stdout("\nOn the server, once:\n");
    printer.stdout(&indent(&server_steps()));
    Ok(())
}

/// Creates `file` only if no entry is there (`O_EXCL`, which never follows a symlink), so a
/// link made after the check above is not written through either.
fn write_new(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)?
        .write_all(text.as_bytes())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const DOCKERFILE: &str = "FROM eclipse-temurin:21-jre
WORKDIR /app
COPY build/libs/*.jar app.jar    # Maven: COPY target/*.jar app.jar
EXPOSE 8080
ENTRYPOINT [\"java\", \"-jar\", \"/app/app.jar\"]
";

fn server_steps() -> String {
    "1. Install Docker Engine and nginx (Ubuntu: `sudo apt-get install -y docker.io nginx`).
2. In the server block that serves the app (e.g. /etc/nginx/sites-available/default):

       server {
           listen 80;
           set $service_url http://127.0.0.1:8081;      # before the first deploy
           include /etc/nginx/conf.d/*.inc;             # bluegreen writes service-url.inc
           location / {
               proxy_pass $service_url;
               proxy_http_version 1.1;
               proxy_set_header Connection \"\";
               proxy_set_header Host $host;
           }
       }

   then `sudo nginx -t && sudo nginx -s reload`.
3. The SSH user needs passwordless sudo (EC2's ubuntu has it) or docker and nginx rights.
4. Put the server's host key in known_hosts: `ssh-keyscan -p 22 HOST` (or host_fingerprint).
5. Check everything: `bluegreen doctor`."
        .to_owned()
}

fn settings_file(name: &str, build: &JarBuild) -> String {
    let build_command = build.build_command;
    format!(
        "# bluegreen settings: every key is also BLUEGREEN_<KEY>, --<key> and an action input.
# Precedence: flag > environment > action input > this file > default.

# The server (an EC2 host) and how to reach it.
host: REPLACE-ME.example.com
# port: 22
# username: ubuntu
# key_file: ~/.ssh/id_ed25519        # in CI use the KEY secret (BLUEGREEN_KEY / input key)
# known_hosts_file: ~/.ssh/known_hosts   # or host_fingerprint: SHA256:...

# The image: a private Docker Hub repository (docker_token comes from the DOCKER_TOKEN secret).
image: REPLACE-ME/{name}
# docker_username: REPLACE-ME
# environment: dev                   # pushes and deploys the tag dev (and dev-<sha7>)

# The jar build before `docker build`: auto (Gradle/Maven wrapper), none, or a command.
build_command: {build_command}

# The app: its port in the container and its readiness check.
# container_port: 8080
# health_path: /actuator/health
# health_timeout: 120s

# Traffic: the file nginx includes, written to point at the live color.
# nginx_switch_file: /etc/nginx/conf.d/service-url.inc
# blue_port: 8081
# green_port: 8082
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_file_is_valid_settings() {
        for build_command in ["auto", "none"] {
            let build = JarBuild {
                build_command,
                said: String::new(),
            };
            let text = settings_file("shop-api", &build);
            let values = crate::settings::yaml::parse_settings_file(&text, "bluegreen.yml")
                .expect("the generated file parses with no unknown key");
            assert_eq!(values["image"], "REPLACE-ME/shop-api");
            // Every commented-out key is a real setting too.
            for line in text.lines().filter_map(|l| l.strip_prefix("# ")) {
                if let Some((key, _)) = line.split_once(": ") {
                    if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        assert!(
                            crate::settings::spec::find(key).is_some(),
                            "`{key}` in the template is not a setting"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn init_says_what_it_found_and_what_auto_really_runs() {
        let dir = tempfile::tempdir().unwrap();
        let said = |dir: &tempfile::TempDir| detect_build(dir.path());
        assert_eq!(said(&dir).build_command, "none");
        std::fs::write(dir.path().join("pom.xml"), "<project/>").unwrap();
        assert_eq!(
            said(&dir).said,
            "found pom.xml but no ./mvnw, so Maven must be installed where bluegreen builds: \
             build_command auto runs `mvn -B package -DskipTests`"
        );
        std::fs::write(dir.path().join("mvnw"), "").unwrap();
        assert_eq!(
            said(&dir).said,
            "found ./mvnw: build_command auto runs `./mvnw -B package -DskipTests`"
        );
        let gradle = tempfile::tempdir().unwrap();
        std::fs::write(gradle.path().join("build.gradle.kts"), "").unwrap();
        let found = said(&gradle);
        assert_eq!(found.build_command, "none");
        assert!(
            found.said.starts_with(
                "found build.gradle.kts but no ./gradlew, which build_command auto needs"
            ),
            "{}",
            found.said
        );
    }

    #[test]
    fn a_dangling_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere/settings.yml");
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("bluegreen.yml")).unwrap();
        let error = init(dir.path(), &Printer::new(crate::printer::Style::Plain)).unwrap_err();
        let said = format!("{error:#}");
        assert!(
            said.contains("bluegreen.yml is a symlink to")
                && said.contains("which does not exist; nothing was written"),
            "{said}"
        );
        assert!(!target.exists(), "written through the link");
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bluegreen.yml"), "host: mine\n").unwrap();
        let error = init(dir.path(), &Printer::new(crate::printer::Style::Plain)).unwrap_err();
        assert!(format!("{error:#}").contains("already exists; nothing was written"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("bluegreen.yml")).unwrap(),
            "host: mine\n"
        );
    }
}
