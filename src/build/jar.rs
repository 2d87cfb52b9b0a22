//! The jar build: `auto` detects Gradle or Maven, `none` skips, anything else runs in a shell.

use std::path::Path;

use super::local::LocalCommand;

/// The command that builds the jar, or `None` when there is nothing to build.
pub fn jar_command(context: &Path, build_command: &str) -> Option<LocalCommand> {
    let command = match build_command {
        "none" => return None,
        "auto" => auto_command(context)?,
        custom => LocalCommand::new("build the jar", &["sh", "-c", custom]),
    };
    Some(command.dir(context))
}

fn auto_command(context: &Path) -> Option<LocalCommand> {
    if context.join("gradlew").exists() {
        let script = ["build.gradle", "build.gradle.kts"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(context.join(name)).ok())
            .collect::<String>();
        let spring_boot = script.contains("org.springframework.boot") || script.contains("bootJar");
        let task: &[&str] = if spring_boot {
            &["bootJar"]
        } else {
            &["build", "-x", "test"]
        };
        return Some(
            LocalCommand::new("build the jar (gradle)", &["./gradlew", "--no-daemon"])
                .args(task.iter().copied()),
        );
    }
    if context.join("mvnw").exists() {
        return Some(LocalCommand::new(
            "build the jar (maven)",
            &["./mvnw", "-B", "package", "-DskipTests"],
        ));
    }
    if context.join("pom.xml").exists() {
        return Some(LocalCommand::new(
            "build the jar (maven)",
            &["mvn", "-B", "package", "-DskipTests"],
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    fn rendered(dir: &tempfile::TempDir, setting: &str) -> Option<String> {
        jar_command(dir.path(), setting).map(|c| c.command.render(false))
    }

    #[test]
    fn detects_spring_boot_gradle() {
        let dir = project(&[
            ("gradlew", ""),
            (
                "build.gradle",
                "plugins { id 'org.springframework.boot' version '3.2.0' }",
            ),
        ]);
        assert_eq!(
            rendered(&dir, "auto").as_deref(),
            Some("./gradlew --no-daemon bootJar")
        );
    }

    #[test]
    fn plain_gradle_builds_without_tests() {
        let dir = project(&[("gradlew", ""), ("build.gradle.kts", "plugins { java }")]);
        assert_eq!(
            rendered(&dir, "auto").as_deref(),
            Some("./gradlew --no-daemon build -x test")
        );
    }

    #[test]
    fn maven_wrapper_then_maven() {
        let wrapper = project(&[("mvnw", ""), ("pom.xml", "<project/>")]);
        assert_eq!(
            rendered(&wrapper, "auto").as_deref(),
            Some("./mvnw -B package -DskipTests")
        );
        let plain = project(&[("pom.xml", "<project/>")]);
        assert_eq!(
            rendered(&plain, "auto").as_deref(),
            Some("mvn -B package -DskipTests")
        );
    }

    #[test]
    fn none_custom_and_nothing_to_detect() {
        let dir = project(&[("gradlew", "")]);
        assert_eq!(rendered(&dir, "none"), None);
        assert_eq!(
            rendered(&dir, "make jar").as_deref(),
            Some("sh -c 'make jar'")
        );
        let empty = project(&[]);
        assert_eq!(rendered(&empty, "auto"), None);
        assert_eq!(
            jar_command(dir.path(), "make jar").unwrap().dir.as_deref(),
            Some(dir.path())
        );
    }
}
