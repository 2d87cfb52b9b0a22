//! One `uses: ./` step run the way GitHub's runner runs a Docker container action: `INPUT_*`
//! built from `action.yml` (every declared default included, names upper-cased, spaces → `_`),
//! the workspace mounted at /github/workspace, HOME=/github/home, the file commands in
//! /github/file_commands, `docker run --rm`, and signals delivered with `docker kill --signal`
//! (the runner signals the `docker` process, which forwards to the container's PID 1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::github::FakeGitHub;
use super::{sh, shared, Run, Site};

pub const GITHUB_TOKEN: &str = "ghs_faketoken1234567890";

static STEPS: AtomicUsize = AtomicUsize::new(0);

/// A step's `with:` and the job's context; `run`/`spawn` execute it.
pub struct Step {
    pub with: BTreeMap<String, String>,
    pub workspace: PathBuf,
    context: Vec<(String, String)>,
    temp: PathBuf,
    name: String,
}

/// What the step left behind.
pub struct StepRun {
    pub run: Run,
    pub outputs: BTreeMap<String, String>,
    pub summary: String,
}

impl StepRun {
    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .unwrap_or_else(|| panic!("output {name} was not written: {:?}", self.outputs))
    }
}

impl Step {
    /// A workspace holding the demo app's sources; `with:` holds every setting of `site` (the
    /// key as content, like a secret) and `build_args: VERSION={version}`.
    pub fn new(site: &Site, github: &FakeGitHub, sha: &str, run_id: &str, version: &str) -> Step {
        let index = STEPS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-step{index}", site.app);
        let temp = site.dir.join(&name);
        let workspace = temp.join("workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        for dir in ["_github_home", "_runner_file_commands", "_github_workflow"] {
            std::fs::create_dir_all(temp.join(dir)).unwrap();
        }
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-app");
        for file in ["Dockerfile", "app.sh"] {
            std::fs::copy(fixture.join(file), workspace.join(file)).unwrap();
        }
        std::fs::copy("/bin/busybox", workspace.join("busybox")).unwrap();
        let mut with: BTreeMap<String, String> = site
            .env
            .iter()
            .filter(|(key, _)| key != "BLUEGREEN_KEY_FILE")
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("BLUEGREEN_")?.to_lowercase();
                Some((name, value.clone()))
            })
            .collect();
        with.insert(
            "key".into(),
            std::fs::read_to_string(&shared().user_key).unwrap(),
        );
        // Each site its own repository: concurrent tests push the same environment tags.
        with.insert(
            "image".into(),
            format!("{}/action/{}", shared().registry, site.app),
        );
        with.insert("build_command".into(), "none".into());
        with.insert("build_args".into(), format!("VERSION={version}"));
        let context = [
            ("GITHUB_SHA", sha.to_owned()),
            ("GITHUB_REPOSITORY", "o/r".into()),
            ("GITHUB_REPOSITORY_OWNER", "o".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("GITHUB_API_URL", github.uri()),
            ("GITHUB_RUN_ID", run_id.into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_ACTOR", "octocat".into()),
            ("GITHUB_WORKFLOW", "deploy".into()),
            ("GITHUB_JOB", "deploy".into()),
            ("GITHUB_EVENT_NAME", "push".into()),
            ("GITHUB_REF", "refs/heads/main".into()),
            ("GITHUB_WORKSPACE", "/github/workspace".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Step {
            with,
            workspace,
            context,
            temp,
            name,
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> Step {
        self.with.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn without(mut self, name: &str) -> Step {
        self.with.remove(name);
        self
    }

    /// The container's environment as the runner makes it.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = runner_inputs(&self.with);
        env.extend(self.context.iter().cloned());
        let files = "/github/file_commands";
        env.extend(
            [
                ("HOME", "/github/home".to_owned()),
                ("GITHUB_ACTIONS", "true".into()),
                ("CI", "true".into()),
                ("GITHUB_OUTPUT", format!("{files}/set_output_{}", self.name)),
                (
                    "GITHUB_STEP_SUMMARY",
                    format!("{files}/step_summary_{}", self.name),
                ),
                ("RUNNER_TEMP", "/home/runner/work/_temp".into()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    /// `docker run` as the runner composes it; values travel in docker's own environment, so
    /// only names are on its argv (as the runner does with secrets).
    pub fn command(&self) -> Command {
        let image = super::action_image::action_image();
        let mut command = Command::new("docker");
        command.args(["run", "--name", &self.name, "--rm", "--network", "host"]);
        command.args(["--workdir", "/github/workspace"]);
        for (key, value) in self.env() {
            command.arg("-e").arg(&key).env(&key, value);
        }
        let mounts = [
            ("/var/run/docker.sock".into(), "/var/run/docker.sock"),
            (self.temp.join("_github_home"), "/github/home"),
            (self.temp.join("_github_workflow"), "/github/workflow"),
            (
                self.temp.join("_runner_file_commands"),
                "/github/file_commands",
            ),
            (self.workspace.clone(), "/github/workspace"),
        ];
        for (host, container) in mounts {
            command
                .arg("-v")
                .arg(format!("{}:{container}", host.display()));
        }
        command.arg(image).arg("action");
        command
    }

    pub fn run(&self) -> StepRun {
        let run = Run::from(self.command().output().unwrap());
        self.finished(run)
    }

    pub fn spawn(&self) -> Child {
        self.command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// What the runner does on cancellation: a signal to the container's PID 1.
    pub fn signal(&self, signal: &str) {
        sh(Command::new("docker").args(["kill", "--signal", signal, &self.name]));
    }

    pub fn finished(&self, run: Run) -> StepRun {
        let files = self.temp.join("_runner_file_commands");
        let read = |name: &str| {
            std::fs::read_to_string(files.join(format!("{name}_{}", self.name))).unwrap_or_default()
        };
        StepRun {
            run,
            outputs: parse_outputs(&read("set_output")),
            summary: read("step_summary"),
        }
    }
}

/// `INPUT_*` for every input `action.yml` declares: the step's value, else the declared
/// default (with `${{ github.token }}` evaluated), else empty; inputs it does not declare are
/// passed too (the runner only warns about them).
pub fn runner_inputs(with: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let action: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let declared = action["inputs"].as_mapping().unwrap();
    let mut names: Vec<String> = declared
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    names.extend(
        with.keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    names
        .into_iter()
        .map(|name| {
            let default = declared
                .get(name.as_str())
                .and_then(|input| input["default"].as_str())
                .map(evaluate);
            let value = with.get(&name).cloned().or(default).unwrap_or_default();
            (
                format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
                value,
            )
        })
        .collect()
}

/// The expressions `action.yml` may use in a default.
fn evaluate(default: &str) -> String {
    match default.trim() {
        "${{ github.token }}" => GITHUB_TOKEN.to_owned(),
        other if other.contains("${{") => panic!("the harness cannot evaluate {other}"),
        other => other.to_owned(),
    }
}

/// `name<<DELIMITER` … `DELIMITER` and `name=value` lines.
pub fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            outputs.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_owned(), value.to_owned());
        }
    }
    outputs
}

/// With `BLUEGREEN_KEEP_SUMMARIES=DIR` set, writes the raw summary to `DIR/NAME.md`, for
/// `scripts/render-summary.sh` to render it as GitHub would.
pub fn keep_summary(name: &str, summary: &str) {
    if let Some(dir) = std::env::var_os("BLUEGREEN_KEEP_SUMMARIES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.md")), summary).unwrap();
    }
}

/// The summary with what changes from run to run replaced.
pub fn stable(summary: &str, site: &Site) -> String {
    let text = summary
        .replace(&shared().registry, "[registry]")
        .replace(&site.app, "[app]")
        .replace(&format!(":{}", shared().ssh_port), ":[ssh-port]");
    let text = [site.blue_port, site.green_port]
        .iter()
        .fold(text, |text, port| {
            text.replace(&format!(":{port}/"), ":[port]/")
        });
    let text = mask_hex_after(&text, "sha256:");
    // "failed after 3.2s", "after 13 probes": timing, not behaviour.
    let text = mask_number_after(&text, "after ");
    text.lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            match cells.as_slice() {
                // Phases that only decide, or only use what an earlier round trip read, take
                // microseconds: under load sometimes 5 ms. Masked whatever they show.
                [name, _] if INSTANT_PHASES.iter().any(|p| name.starts_with(p)) => {
                    format!("{name} | [instant] |")
                }
                // Any other zero stays: every phase takes time, and all-zero times were a bug.
                [name, value] if is_nonzero_number(value) => format!("{name} | [n] |"),
                // How many probe requests fit in the switch is timing; how many failed is not.
                ["| impact", _] => ["of ", "blue ", "green ", "color unknown "]
                    .iter()
                    .fold(line.to_owned(), |line, prefix| {
                        mask_number_after(&line, prefix)
                    }),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Phases of the time table that do no work of their own.
const INSTANT_PHASES: [&str; 2] = ["| read server state", "| stop here, changing nothing"];

/// A time or a count: `0.42 |`, `12.5 s |`, `7 |`; a zero is not.
fn is_nonzero_number(cell: &str) -> bool {
    let cell = cell.trim_end_matches(" |").trim_end_matches(" s");
    cell.parse::<f64>().is_ok_and(|n| n != 0.0)
}

fn mask_hex_after(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        rest = &rest[at + prefix.len()..];
        let hex = rest.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        if hex >= 12 {
            out.push_str("[digest]");
            rest = &rest[hex..];
        }
    }
    out.push_str(rest);
    out
}

fn mask_number_after(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        rest = &rest[at + prefix.len()..];
        let number = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .count();
        if number > 0 {
            out.push_str("[n]");
            rest = &rest[number..];
        }
    }
    out.push_str(rest);
    out
}
