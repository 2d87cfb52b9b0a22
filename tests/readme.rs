//! What the README promises a new user, held against the code and the packaging: the commands
//! the action runs (asked of the real binary), the first screen (the `uses:` workflow, the
//! default switch, process mode, Linux x86-64 runners), the install list of `scripts/setup.sh`,
//! the pinned `actions/checkout` (the same commit as the project's own workflows), the example's
//! manual job outside the deploy's concurrency group, no project-internal words, and the action
//! image's downloads checked by sha256 with no curl or git left in it.

use std::path::Path;
use std::process::Command;

use crate::support::{binary, Run};

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn readme() -> String {
    repo_file("README.md")
}

/// The README up to its first second-level heading: what a visitor sees before scrolling on.
fn first_screen(readme: &str) -> &str {
    let end = readme.find("\n## ").unwrap_or(readme.len());
    &readme[..end]
}

/// The names the action's `command` input accepts, as the binary itself lists them when given
/// one it does not know.
fn action_commands() -> Vec<String> {
    let run = Run::from(
        Command::new(binary())
            .arg("action")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("INPUT_COMMAND", "no-such-command")
            .output()
            .unwrap(),
    );
    run.code(2);
    let said = format!("{}{}", run.stdout, run.stderr);
    let marker = "is not one of ";
    let start = said.find(marker).expect(&said) + marker.len();
    let list = &said[start..];
    let list = &list[..list.find(';').unwrap()];
    list.split(", ").map(str::to_owned).collect()
}

/// The paragraph that documents the `command` input.
fn commands_paragraph(readme: &str) -> &str {
    let start = readme
        .find("plus `command`")
        .expect("README.md documents the action's `command` input");
    let rest = &readme[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn the_readme_names_every_command_the_action_runs_doctor_included() {
    let commands = action_commands();
    assert!(commands.contains(&"doctor".to_owned()), "{commands:?}");
    let readme = readme();
    let paragraph = commands_paragraph(&readme);
    for command in &commands {
        assert!(
            paragraph.contains(&format!("`{command}`")),
            "the README's paragraph on the `command` input lacks `{command}`, which the action runs: {paragraph}"
        );
    }
    for denial in [
        "not in this version",
        "not available from the action",
        "exit 2, says so",
    ] {
        assert!(
            !readme.contains(denial),
            "README.md says a command is missing ({denial}), but the action runs {commands:?}"
        );
    }
}

#[test]
fn the_first_screen_has_the_workflow_the_default_switch_and_the_runners() {
    let readme = readme();
    let screen = first_screen(&readme);
    for needed in [
        "uses: org/bluegreen-action@",
        "uses: actions/checkout@",
        "concurrency:",
        "cancel-in-progress: false",
        "traffic_switch: auto",
        "nftables",
        "process mode",
        "Linux runners (x86-64)",
        "bluegreen ship",
        "(#benchmark)",
    ] {
        assert!(
            screen.contains(needed),
            "README.md's first screen lacks `{needed}`"
        );
    }
    // The contributor commands come after what a user needs.
    assert!(!screen.contains("scripts/test.sh"), "{screen}");
    let action = repo_file("action.yml");
    let description = action
        .lines()
        .find(|line| line.starts_with("description:"))
        .unwrap();
    assert!(
        description.contains("Linux runners (x86-64)"),
        "{description}"
    );
}

#[test]
fn the_readme_lists_everything_setup_sh_installs() {
    let setup = repo_file("scripts/setup.sh");
    let readme = readme();
    let contributing = &readme[readme
        .find("## Contributing")
        .expect("README.md has a Contributing section")..];
    let mut names = Vec::new();
    for array in ["packages=(", "checker_packages=("] {
        let line = setup
            .lines()
            .find(|line| line.starts_with(array))
            .unwrap_or_else(|| panic!("scripts/setup.sh has no `{array}` line"));
        let inside = &line[array.len()..line.rfind(')').unwrap()];
        names.extend(
            inside
                .split_whitespace()
                .map(|word| word.split("==").next().unwrap().to_owned()),
        );
    }
    assert!(names.len() > 10, "{names:?}");
    for name in names.iter().chain([&"docker.io".to_owned()]) {
        assert!(
            contributing.contains(name.as_str()),
            "README.md's Contributing section does not say setup.sh installs {name}"
        );
    }
}

/// The `actions/checkout@<sha> # <version>` references of a file.
fn checkout_pins(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split("uses: actions/checkout@").nth(1))
        .map(|pin| pin.trim().to_owned())
        .collect()
}

#[test]
fn every_checkout_is_pinned_to_the_same_commit_as_the_projects_own_workflows() {
    let ci = checkout_pins(&repo_file(".github/workflows/ci.yml"));
    let pin = ci.first().expect("ci.yml checks out").clone();
    let (sha, version) = pin.split_once(" # ").expect("a version comment");
    assert!(
        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "{pin}"
    );
    assert!(version.starts_with('v'), "{pin}");
    for file in [
        "README.md",
        "examples/deploy.yml",
        ".github/workflows/release.yml",
    ] {
        let pins = checkout_pins(&repo_file(file));
        assert!(!pins.is_empty(), "{file} has no checkout");
        for other in pins {
            assert_eq!(other, pin, "{file} pins checkout differently from ci.yml");
        }
    }
}

/// The `group:` lines of a workflow's `concurrency:` blocks, in order.
fn concurrency_groups(workflow: &str) -> Vec<String> {
    let lines: Vec<&str> = workflow.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].trim() == "concurrency:")
        .filter_map(|pair| pair[1].trim().strip_prefix("group:"))
        .map(|group| group.trim().to_owned())
        .collect()
}

#[test]
fn the_examples_manual_job_does_not_share_the_deploys_concurrency_group() {
    let groups = concurrency_groups(&repo_file("examples/deploy.yml"));
    assert_eq!(groups.len(), 2, "{groups:?}");
    let (deploy, manual) = (&groups[0], &groups[1]);
    let prefix = |group: &str| group.split("${{").next().unwrap().to_owned();
    assert_ne!(
        prefix(deploy),
        prefix(manual),
        "a manual rollback in the deploy's group can be replaced by a push: {groups:?}"
    );
}

#[test]
fn the_readme_says_concurrency_keeps_one_waiting_run_not_a_queue() {
    let readme = readme();
    assert!(readme.contains("at most one"), "the concurrency wording");
    assert!(!readme.contains("queues overlapping pushes"));
    let example = repo_file("examples/deploy.yml");
    assert!(!example.contains("queued"), "examples/deploy.yml");
}

#[test]
fn the_readme_uses_no_project_internal_words() {
    let readme = readme();
    let lower = readme.to_lowercase();
    for word in [
        "seed 0", "seeds 0", "seeds'", "issue 1", "issue 2", "issue #",
    ] {
        assert!(
            !lower.contains(word),
            "README.md says `{word}`, a word of the project's own history"
        );
    }
}

/// The runtime stage: the Dockerfile after its last `FROM`.
fn runtime_stage(dockerfile: &str) -> &str {
    &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..]
}

#[test]
fn every_download_of_the_action_image_is_checked_by_sha256_and_leaves_no_tool_behind() {
    let dockerfile = repo_file("Dockerfile");
    let urls: std::collections::BTreeSet<&str> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("ARG "))
        .filter_map(|arg| arg.split_once("_URL=https://"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        urls.iter().copied().collect::<Vec<_>>(),
        ["BUILDX", "DOCKER_CLI"],
        "the README says which downloads there are"
    );
    for name in urls {
        let sum = dockerfile
            .lines()
            .find_map(|line| line.strip_prefix(&format!("ARG {name}_SHA256=")))
            .unwrap_or_else(|| panic!("no {name}_SHA256 beside {name}_URL"));
        assert!(
            sum.len() == 64 && sum.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}_SHA256={sum}"
        );
        assert!(
            dockerfile.contains(&format!("echo \"${name}_SHA256  ")),
            "the download of {name}_URL is not checked against {name}_SHA256"
        );
    }
    assert!(dockerfile.contains("| sha256sum -c -"));
    let runtime = runtime_stage(&dockerfile);
    let install = runtime
        .lines()
        .find(|line| line.contains("apt-get install") && line.contains("openssh-client"))
        .expect("the runtime installs its packages");
    for absent in [" curl", " git ", " git;"] {
        assert!(
            !install.contains(absent),
            "the runtime stage installs`{absent}`: {install}"
        );
    }
}
