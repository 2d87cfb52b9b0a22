//! Several server commands in one SSH round trip: a fixed script receives every command's
//! words as positional arguments (never in its text), runs the commands one after another and
//! prints each one's exit code, stdout and stderr as a frame; the first command that fails ends
//! the batch. Each command keeps its own deadline (`timeout`) and its own `sudo -n`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::Output;
use crate::server::command::Script;
use crate::server::{ServerCommand, Stdin};

/// The shell function that runs a batch: `bluegreen_batch MODE N1 IN1 WORDS1… N2 IN2 WORDS2…`,
/// where MODE is `stop` (one after another; the first failure ends the batch) or `all` (all at
/// once, for independent readings; none may read the batch's stdin), Nk the number of words of
/// command k and INk its input: `-` none, `<` the batch's own stdin (a secret or a file: one
/// command at most), `=TEXT` that text. Values reach the commands only through `"${k}"`
/// expansions. The last line is the end marker; a batch that cannot start (no temporary
/// directory) prints the failed marker instead and returns 0: it has said what happened.
macro_rules! batch_function {
    () => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/remote/batch/batch_function.sh"
        ))
    };
}
pub(crate) use batch_function;

pub const SCRIPT: Script = Script {
    name: "bluegreen-batch",
    text: concat!(batch_function!(), "bluegreen_batch \"$@\"\n"),
};

const FRAME: &str = "::bluegreen-batch::";
const END: &str = "::bluegreen-batch-end::";
pub(crate) const FAILED: &str = "::bluegreen-batch-failed::";
/// A frame larger than this is not believed (the output of one command is read at most once).
const MAX_FRAME: i64 = 64 * 1024 * 1024;

/// The batch could not start on the server (no temporary directory): none of its commands ran.
#[derive(Debug)]
pub struct NotRun;

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the batch could not start on the server (no temporary directory)")
    }
}

impl std::error::Error for NotRun {}

/// Whether the first failure ends a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each command needs the ones before it (the steps of a swap).
    StopAtFailure,
    /// Independent readings: all of them run, at the same time.
    All,
}

/// One command's result in a batch, and how long it took on the server (when `date` could
/// tell).
#[derive(Clone, Debug)]
pub struct Ran {
    pub output: Output,
    pub took: Option<Duration>,
}

/// Whether one batch can carry `commands`: at most one reads the batch's own stdin (a secret
/// or a file), and only when they run one after another.
pub fn can_carry(commands: &[ServerCommand], mode: Mode) -> bool {
    let readers = commands
        .iter()
        .filter(|c| matches!(c.stdin, Stdin::Secret(_) | Stdin::Bytes(_)))
        .count();
    readers == 0 || (readers == 1 && mode == Mode::StopAtFailure)
}

/// The arguments that follow the script's name: the mode, then for every command its word
/// count, its input and its final words (with `sudo -n` and its deadline). Also the one stdin
/// of the batch.
pub fn arguments(
    commands: &[ServerCommand],
    mode: Mode,
    sudo: bool,
    deadline: Duration,
) -> Result<(Vec<String>, Stdin)> {
    if !can_carry(commands, mode) {
        bail!("a batch can give its stdin to one command only, and only one after another (internal error)");
    }
    let mode = match mode {
        Mode::StopAtFailure => "stop",
        Mode::All => "all",
    };
    let mut words = vec![mode.to_owned()];
    let mut stdin = Stdin::None;
    for command in commands {
        let argv = super::with_deadline(command.final_argv(sudo), deadline);
        words.push(argv.len().to_string());
        words.push(match &command.stdin {
            Stdin::None => "-".to_owned(),
            // Text is never secret (a switch file, a ruleset, a state): an argument is fine.
            Stdin::Text(text) => format!("={text}"),
            Stdin::Secret(_) | Stdin::Bytes(_) => {
                stdin = command.stdin.clone();
                "<".to_owned()
            }
        });
        words.extend(argv);
    }
    Ok((words, stdin))
}

/// The one command that runs a batch (plain `sh`: each command has its own `sudo -n`).
pub fn command(
    commands: &[ServerCommand],
    sudo: bool,
    deadline: Duration,
) -> Result<ServerCommand> {
    let (words, stdin) = arguments(commands, Mode::StopAtFailure, sudo, deadline)?;
    let purposes: Vec<&str> = commands.iter().map(|c| c.purpose.as_str()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(ServerCommand::script(purposes.join(", then "), &SCRIPT, &words).stdin(stdin))
}

/// Reads the frames up to the end marker: fewer than the commands when one failed (the batch
/// ended there). An output that ends before the marker is an error (the connection broke).
pub async fn read_frames(reader: &mut (impl AsyncBufRead + Unpin)) -> Result<Vec<Ran>> {
    let mut results = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 {
            bail!("the batch's output ended before its end");
        }
        if header.trim() == END {
            return Ok(results);
        }
        if header.trim() == FAILED && results.is_empty() {
            return Err(NotRun.into());
        }
        let Some(fields) = header.trim().strip_prefix(FRAME) else {
            bail!(
                "the batch printed `{}` where a result was due",
                header.trim()
            );
        };
        let numbers: Vec<i64> = fields
            .split_whitespace()
            .map(|field| field.parse::<i64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading the batch's result `{}`", header.trim()))?;
        let [index, code, out_len, err_len, millis] = numbers[..] else {
            bail!("the batch's result `{}` is incomplete", header.trim());
        };
        if index != results.len() as i64 + 1 {
            bail!("the batch's results came out of order");
        }
        let stdout = read_exactly(reader, out_len).await?;
        let stderr = read_exactly(reader, err_len).await?;
        results.push(Ran {
            output: Output {
                code: i32::try_from(code).ok(),
                stdout,
                stderr,
            },
            took: u64::try_from(millis).ok().map(Duration::from_millis),
        });
    }
}

/// The frames of `results` as the script prints them (for the fake host).
#[cfg(test)]
pub fn encode(results: &[Output]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (index, output) in results.iter().enumerate() {
        let header = format!(
            "{FRAME} {} {} {} {} 0\n",
            index + 1,
            output.code.unwrap_or(255),
            output.stdout.len(),
            output.stderr.len()
        );
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(output.stdout.as_bytes());
        bytes.extend_from_slice(output.stderr.as_bytes());
    }
    bytes.extend_from_slice(format!("{END}\n").as_bytes());
    bytes
}

async fn read_exactly(reader: &mut (impl AsyncBufRead + Unpin), len: i64) -> Result<String> {
    if len > MAX_FRAME {
        bail!("the batch's result claims {len} bytes");
    }
    let len = usize::try_from(len).context("a negative length in the batch's result")?;
    let mut bytes = vec![0; len];
    reader
        .read_exact(&mut bytes)
        .await
        .context("the batch's output ended early")?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn run_batch_here(commands: &[ServerCommand]) -> Vec<Ran> {
        let batch = command(commands, false, Duration::from_secs(10)).unwrap();
        let argv = batch.final_argv(false);
        let mut process = std::process::Command::new(&argv[0]);
        process.args(&argv[1..]);
        let input = match &batch.stdin {
            Stdin::Secret(secret) => secret.expose().to_owned(),
            _ => String::new(),
        };
        process
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = process.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(read_frames(&mut output.stdout.as_slice()))
            .unwrap()
    }

    #[test]
    fn runs_every_command_with_its_own_words_and_stdin() {
        let tricky = "it's $HOME \"quoted\" `no` ${1}\nsecond line";
        let commands = [
            ServerCommand::new("echo", &["printf", "%s|", tricky, "b c"]),
            ServerCommand::new("both streams", &["sh", "-c", "echo out; echo err >&2"]),
            ServerCommand::new("read the secret", &["cat"])
                .stdin(Stdin::Secret(crate::settings::Secret::new("from stdin"))),
            ServerCommand::new("no stdin", &["cat"]),
            ServerCommand::new("text", &["cat"]).stdin(Stdin::Text(tricky.into())),
            ServerCommand::new("more text", &["cat"]).stdin(Stdin::Text("-x\n".into())),
        ];
        let results = run_batch_here(&commands);
        assert_eq!(results.len(), 6);
        assert_eq!(results[0].output.stdout, format!("{tricky}|b c|"));
        assert_eq!(results[1].output.stdout, "out\n");
        assert_eq!(results[1].output.stderr, "err\n");
        assert_eq!(results[2].output.stdout, "from stdin");
        assert_eq!(results[3].output.stdout, "", "only one command reads stdin");
        assert_eq!(results[4].output.stdout, tricky);
        assert_eq!(results[5].output.stdout, "-x\n");
        assert!(results.iter().all(|r| r.output.success()));
        assert!(results.iter().all(|r| r.took.is_some()));
    }

    #[test]
    fn the_first_failure_ends_the_batch() {
        let marker = tempfile::NamedTempFile::new().unwrap();
        let path = marker.path().to_str().unwrap().to_owned();
        std::fs::remove_file(&path).unwrap();
        let commands = [
            ServerCommand::new("ok", &["true"]),
            ServerCommand::new("fails", &["sh", "-c", "echo why >&2; exit 3"]),
            ServerCommand::new("never", &["touch", &path]),
        ];
        let results = run_batch_here(&commands);
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].output.code, Some(3));
        assert_eq!(results[1].output.stderr, "why\n");
        assert!(
            !std::path::Path::new(&path).exists(),
            "a command after the failure ran"
        );
    }

    #[test]
    fn all_at_once_runs_every_command_together_and_reports_in_order() {
        let commands = [
            ServerCommand::new("slow", &["sh", "-c", "sleep 0.3; echo first"]),
            ServerCommand::new("fails", &["sh", "-c", "sleep 0.3; exit 2"]),
            ServerCommand::new("also slow", &["sh", "-c", "sleep 0.3; echo third"]),
        ];
        let (words, _) = arguments(&commands, Mode::All, false, Duration::from_secs(10)).unwrap();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let batch = ServerCommand::script("all", &SCRIPT, &words);
        let argv = batch.final_argv(false);
        let started = std::time::Instant::now();
        let output = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let results = runtime
            .block_on(read_frames(&mut output.stdout.as_slice()))
            .unwrap();
        assert_eq!(results.len(), 3, "a failure does not end an `all` batch");
        assert_eq!(results[0].output.stdout, "first\n");
        assert_eq!(results[1].output.code, Some(2));
        assert_eq!(results[2].output.stdout, "third\n");
        assert!(
            elapsed < Duration::from_millis(800),
            "took {elapsed:?}: not at once"
        );
        let secret = ServerCommand::new("secret", &["cat"])
            .stdin(Stdin::Secret(crate::settings::Secret::new("s")));
        assert!(arguments(&[secret], Mode::All, false, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn frames_read_back_as_encoded() {
        let outputs = [
            Output {
                code: Some(0),
                stdout: "a\nb".into(),
                stderr: String::new(),
            },
            Output {
                code: Some(1),
                stdout: String::new(),
                stderr: "no such thing\n".into(),
            },
        ];
        let bytes = encode(&outputs);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let read = runtime
            .block_on(read_frames(&mut bytes.as_slice()))
            .unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].output.stdout, "a\nb");
        assert_eq!(read[1].output.code, Some(1));
        assert_eq!(read[1].output.stderr, "no such thing\n");
        let cut = &bytes[..bytes.len() - 5];
        assert!(runtime.block_on(read_frames(&mut &cut[..])).is_err());
    }

    /// Runs a one-after-another batch here with `TMPDIR` set, and reads its frames.
    fn run_with_tmpdir(commands: &[ServerCommand], tmpdir: &Path) -> Result<Vec<Ran>> {
        let batch = command(commands, false, Duration::from_secs(10)).unwrap();
        let argv = batch.final_argv(false);
        let output = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("TMPDIR", tmpdir)
            .output()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(read_frames(&mut output.stdout.as_slice()))
    }

    #[test]
    fn many_words_and_no_leftover_files() {
        let words: Vec<String> = (0..25).map(|n| n.to_string()).collect();
        let mut argv = vec!["echo"];
        argv.extend(words.iter().map(String::as_str));
        let tmp = tempfile::tempdir().unwrap();
        let commands = [ServerCommand::new("words", &argv)];
        let results = run_with_tmpdir(&commands, tmp.path()).unwrap();
        assert_eq!(results[0].output.stdout, format!("{}\n", words.join(" ")));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_batch_that_cannot_start_says_so_and_runs_nothing() {
        let marker = tempfile::tempdir().unwrap();
        let path = marker.path().join("ran");
        let commands = [ServerCommand::new(
            "touch",
            &["touch", path.to_str().unwrap()],
        )];
        let error = run_with_tmpdir(&commands, Path::new("/nonexistent/bluegreen")).unwrap_err();
        assert!(error.downcast_ref::<NotRun>().is_some(), "{error:#}");
        assert!(!path.exists());
    }

    #[test]
    fn two_readers_of_the_batch_stdin_are_refused() {
        let secret = |text: &str| Stdin::Secret(crate::settings::Secret::new(text));
        let commands = [
            ServerCommand::new("a", &["cat"]).stdin(secret("a")),
            ServerCommand::new("b", &["cat"]).stdin(Stdin::Bytes(b"b".to_vec())),
        ];
        assert!(command(&commands, false, Duration::from_secs(1)).is_err());
    }
}
