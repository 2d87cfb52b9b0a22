//! Server-side state in `state_dir`: the deploy lock, `state.json`, `history.jsonl`.
//! These commands never use sudo: the state lives in the SSH user's own directory, private to
//! that user (directory 0700, files 0600: the lock holder and history name runs and images).

use super::command::{Script, ServerCommand};

/// Holds an flock on `$1/lock` for as long as its stdin stays open. The lock is a kernel lock
/// held by this process, so it disappears with the SSH session or the deploying process — a
/// killed deploy can never leave it behind. Prints `busy <holder json>` while waiting, then
/// `acquired`, or `timeout` after `$3` seconds. Once acquired, runs the batch in the further
/// arguments (the readings of the server, in the same round trip) and prints its frames; then
/// appends the one line its stdin may bring to the history (`recorded`) before it lets go.
pub const LOCK_SCRIPT: Script = Script {
    name: "bluegreen-lock",
    text: concat!(
        crate::remote::batch::batch_function!(),
        include_str!("state/lock.sh")
    ),
};

/// Prints the switch file, state, lock holder (only while the lock is really held) and the
/// recent history, in sections.
pub const READ_SCRIPT: Script = Script {
    name: "bluegreen-read-state",
    text: include_str!("state/read_state.sh"),
};

/// Replaces state.json atomically (`$2`, unless empty) and appends one history line (`$3`,
/// unless empty).
pub const RECORD_SCRIPT: Script = Script {
    name: "bluegreen-record",
    text: include_str!("state/record.sh"),
};

/// Ends the process holding the lock (named in lock.json) and removes the holder record;
/// `$2`: `show` only prints the holder, a server pid ends the holder only while it is that one.
pub const UNLOCK_SCRIPT: Script = Script {
    name: "bluegreen-unlock",
    text: include_str!("state/unlock.sh"),
};

pub fn lock(state_dir: &str, holder_json: &str, wait_secs: u64) -> ServerCommand {
    ServerCommand::script(
        "take the deploy lock",
        &LOCK_SCRIPT,
        &[state_dir, holder_json, &wait_secs.to_string()],
    )
}

pub fn read(state_dir: &str, switch_file: &str) -> ServerCommand {
    ServerCommand::script("read server state", &READ_SCRIPT, &[state_dir, switch_file])
}

pub fn record(state_dir: &str, state_json: &str, history_line: &str) -> ServerCommand {
    ServerCommand::script(
        "record the result",
        &RECORD_SCRIPT,
        &[state_dir, state_json, history_line],
    )
}

pub fn unlock(state_dir: &str) -> ServerCommand {
    ServerCommand::script("remove the deploy lock", &UNLOCK_SCRIPT, &[state_dir])
}

/// Prints the lock holder (`free` when the lock is not held); changes nothing.
pub fn lock_holder(state_dir: &str) -> ServerCommand {
    ServerCommand::script(
        "read the deploy lock holder",
        &UNLOCK_SCRIPT,
        &[state_dir, "show"],
    )
}

/// [`unlock`], only while the holder is still the lock process `server_pid` (else `changed`).
pub fn unlock_holder(state_dir: &str, server_pid: u32) -> ServerCommand {
    let pid = server_pid.to_string();
    ServerCommand::script("remove the deploy lock", &UNLOCK_SCRIPT, &[state_dir, &pid])
}

/// The sections printed by [`READ_SCRIPT`].
#[derive(Debug, Default, PartialEq)]
pub struct StateSections {
    /// `None` when the switch file does not exist.
    pub switch: Option<String>,
    pub state: String,
    pub lock: String,
    pub history: Vec<String>,
}

pub fn parse_sections(output: &str) -> StateSections {
    let mut sections = StateSections::default();
    let mut current = "";
    let mut switch = String::new();
    let mut switch_missing = false;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("::bluegreen::") {
            if name == "missing" {
                switch_missing = true;
            } else {
                current = match name {
                    "switch" | "state" | "lock" | "history" => name,
                    _ => current,
                };
            }
            continue;
        }
        let target = match current {
            "switch" => &mut switch,
            "state" => &mut sections.state,
            "lock" => &mut sections.lock,
            "history" => {
                if !line.trim().is_empty() {
                    sections.history.push(line.to_owned());
                }
                continue;
            }
            _ => continue,
        };
        target.push_str(line);
        target.push('\n');
    }
    sections.switch = (!switch_missing).then(|| without_trailing_blank_lines(switch));
    sections.state = without_trailing_blank_lines(std::mem::take(&mut sections.state));
    sections.lock = without_trailing_blank_lines(std::mem::take(&mut sections.lock));
    sections
}

/// The script ends every section with a newline of its own (a file need not end with one), so
/// blank lines at a section's end carry no content.
fn without_trailing_blank_lines(mut text: String) -> String {
    text.truncate(text.trim_end_matches(['\n', '\r']).len());
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_exact() {
        assert_eq!(
            lock("~/.bluegreen/api", "{}", 600).render(true),
            "sh -c <bluegreen-lock> bluegreen-lock '~/.bluegreen/api' '{}' 600"
        );
        assert_eq!(
            read("~/.bluegreen/api", "/etc/nginx/conf.d/service-url.inc").render(true),
            "sh -c <bluegreen-read-state> bluegreen-read-state '~/.bluegreen/api' /etc/nginx/conf.d/service-url.inc"
        );
    }

    /// The real record and read scripts, here: the state file is replaced, the history grows
    /// by one line per record, and the read shows both, the switch file, and no lock holder
    /// while nobody holds the lock (the state dir is created private).
    #[test]
    fn the_state_scripts_record_then_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let state_dir = state_dir.to_str().unwrap();
        let switch = dir.path().join("service-url.inc");
        let switch = switch.to_str().unwrap();
        let run = |command: ServerCommand| crate::testing::run_here(&command, None);
        let missing = parse_sections(&run(read(state_dir, switch)));
        assert_eq!(missing.switch, None);
        run(record(state_dir, "{\"live\":\"blue\"}", "{\"run\":1}"));
        run(record(state_dir, "{\"live\":\"green\"}", "{\"run\":2}"));
        run(record(state_dir, "", "{\"run\":3}"));
        std::fs::write(switch, "set $service_url http://127.0.0.1:8082;").unwrap();
        // A lock file nobody holds, with the record a finished holder left.
        std::fs::write(format!("{state_dir}/lock"), "").unwrap();
        std::fs::write(format!("{state_dir}/lock.json"), "{\"server_pid\":1}").unwrap();
        let sections = parse_sections(&run(read(state_dir, switch)));
        assert_eq!(
            sections,
            StateSections {
                switch: Some("set $service_url http://127.0.0.1:8082;\n".into()),
                state: "{\"live\":\"green\"}\n".into(),
                lock: String::new(),
                history: vec![
                    "{\"run\":1}".into(),
                    "{\"run\":2}".into(),
                    "{\"run\":3}".into()
                ],
            }
        );
        let mode = std::fs::metadata(state_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(!std::path::Path::new(&format!("{state_dir}/state.json.tmp")).exists());
    }

    /// The real unlock script, here: it names the holder (lock.json), ends the process that
    /// holds the lock, waits until the lock is free and removes the record; a free lock says
    /// `free` and touches nothing.
    #[test]
    fn the_unlock_script_ends_the_holder_and_frees_the_lock() {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().to_str().unwrap().to_owned();
        let lock_file = format!("{state_dir}/lock");
        let run = |command: ServerCommand| crate::testing::run_here(&command, None);
        assert_eq!(run(unlock(&state_dir)), "free\n");
        // Takes the lock on its descriptor 9, then becomes `sleep` (keeping the descriptor).
        let mut holder = crate::testing::Child::spawn(std::process::Command::new("sh").args([
            "-c",
            "exec 9>>\"$0\"; flock 9 && exec sleep 600",
            &lock_file,
        ]));
        crate::testing::wait_for("the holder to take the lock", || {
            let free = std::process::Command::new("flock")
                .args(["-n", &lock_file, "true"])
                .status()
                .unwrap();
            !free.success()
        });
        let record = format!("{{\"server_pid\":{},\"holder\":{{}}}}\n", holder.0.id());
        std::fs::write(format!("{state_dir}/lock.json"), &record).unwrap();
        // `show` and another holder's pid only read: the lock stays held.
        let held = || {
            !std::process::Command::new("flock")
                .args(["-n", &lock_file, "true"])
                .status()
                .unwrap()
                .success()
        };
        assert_eq!(run(lock_holder(&state_dir)), record);
        let other = unlock_holder(&state_dir, holder.0.id() + 1);
        assert_eq!(run(other), format!("{record}changed\n"));
        assert!(held(), "a read or a stale pid ended the holder");
        let output = run(unlock_holder(&state_dir, holder.0.id()));
        assert_eq!(output, record);
        let ended = holder.ended();
        assert_eq!(
            ended.signal(),
            Some(15),
            "the holder got SIGTERM: {ended:?}"
        );
        assert!(!std::path::Path::new(&format!("{state_dir}/lock.json")).exists());
        assert_eq!(run(unlock(&state_dir)), "free\n");
    }

    /// The real script, here: the batch runs while the lock is held (a second flock on the
    /// file fails inside it, and the batch's commands do not hold the lock themselves), the
    /// line on stdin lands in the history, and nothing is left once stdin closes.
    #[test]
    fn the_lock_holder_reads_under_the_lock_then_records_the_entry() {
        use std::io::{BufRead, BufReader, Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().to_str().unwrap().to_owned();
        let lock_file = format!("{state_dir}/lock");
        let batch = [
            ServerCommand::new(
                "is the lock held",
                &["flock", "-n", &lock_file, "echo", "free"],
            ),
            ServerCommand::new("echo", &["echo", "read"]),
            // Outlives the holder: had it inherited the lock's descriptor, the lock would
            // still be held at the end.
            ServerCommand::new(
                "leaves a process behind",
                &["sh", "-c", "sleep 3 >/dev/null 2>&1 </dev/null &"],
            ),
        ];
        let (words, _) = crate::remote::batch::arguments(
            &batch,
            crate::remote::batch::Mode::All,
            false,
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        let argv = lock(&state_dir, "{\"who\":\"test\"}", 5)
            .args(words)
            .final_argv(false);
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "acquired\n");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut rest = Vec::new();
        let mut stdin = child.stdin.take().unwrap();
        // The frames end with the marker; read up to it.
        loop {
            let mut next = String::new();
            stdout.read_line(&mut next).unwrap();
            rest.extend_from_slice(next.as_bytes());
            if next.trim() == "::bluegreen-batch-end::" || next.is_empty() {
                break;
            }
        }
        let results = runtime
            .block_on(crate::remote::batch::read_frames(&mut rest.as_slice()))
            .unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].output.code, Some(1), "the lock was not held");
        assert_eq!(results[1].output.stdout, "read\n");
        let held = std::process::Command::new("flock")
            .args(["-n", &lock_file, "true"])
            .status()
            .unwrap();
        assert!(!held.success(), "the lock was let go after the batch");
        stdin.write_all(b"{\"entry\":1}\n").unwrap();
        stdin.flush().unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "recorded\n");
        drop(stdin);
        let mut end = String::new();
        stdout.read_to_string(&mut end).unwrap();
        assert!(child.wait().unwrap().success());
        let history = std::fs::read_to_string(format!("{state_dir}/history.jsonl")).unwrap();
        assert_eq!(history, "{\"entry\":1}\n");
        assert!(!std::path::Path::new(&format!("{state_dir}/lock.json")).exists());
        let free = std::process::Command::new("flock")
            .args(["-n", &lock_file, "true"])
            .status()
            .unwrap();
        assert!(free.success(), "the lock outlived its holder");
    }

    /// A batch that cannot start under the lock (no temporary directory) says so once: the
    /// holder's next answer is about the history entry (a second marker was read as that
    /// answer, and the entry, though written, reported as failed).
    #[test]
    fn a_lock_whose_batch_cannot_start_says_so_once_then_records() {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().to_str().unwrap().to_owned();
        let batch = [ServerCommand::new("echo", &["echo", "read"])];
        let (words, _) = crate::remote::batch::arguments(
            &batch,
            crate::remote::batch::Mode::All,
            false,
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        let argv = lock(&state_dir, "{\"who\":\"test\"}", 5)
            .args(words)
            .final_argv(false);
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("TMPDIR", "/nonexistent/bluegreen")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut next = || {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line
        };
        assert_eq!(next(), "acquired\n");
        assert_eq!(next(), format!("{}\n", crate::remote::batch::FAILED));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"{\"entry\":1}\n").unwrap();
        drop(stdin);
        assert_eq!(next(), "recorded\n");
        assert!(child.wait().unwrap().success());
    }

    /// The real script on a full filesystem (a 4 KiB tmpfs in a mount namespace of its own).
    #[test]
    fn a_record_on_a_full_disk_leaves_no_temp_file_and_the_old_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let record = record(state.to_str().unwrap(), &"x".repeat(20_000), "");
        let argv = record.final_argv(false);
        let inside = r#"d=$1; shift
            mount -t tmpfs -o size=4k none "$d" || exit 99
            printf '{"old":1}\n' > "$d/state.json"
            head -c 8192 /dev/zero > "$d/fill" 2>/dev/null
            "$@" >/dev/null 2>&1; echo "exit $?"
            ls -A "$d"; cat "$d/state.json""#;
        let output = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", inside, "sh"])
            .arg(&state)
            .args(&argv)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(said, "exit 1\nfill\nstate.json\n{\"old\":1}\n", "{said}");
    }

    #[test]
    fn parses_sections() {
        let output = "::bluegreen::switch\nset $x 1;\n::bluegreen::state\n{\"a\":1}\n\n::bluegreen::lock\n{\"pid\":1}\n::bluegreen::history\n{\"h\":1}\n{\"h\":2}\n";
        let sections = parse_sections(output);
        assert_eq!(sections.switch.as_deref(), Some("set $x 1;\n"));
        assert_eq!(sections.state, "{\"a\":1}\n");
        assert_eq!(sections.lock, "{\"pid\":1}\n");
        assert_eq!(sections.history, vec!["{\"h\":1}", "{\"h\":2}"]);
        let missing =
            parse_sections("::bluegreen::switch\n::bluegreen::missing\n::bluegreen::state\n");
        assert_eq!(missing.switch, None);
    }
}
