//! What `bluegreen doctor` reads on the server, in one read-only script: facts only, printed in
//! sections; judging them is [`crate::engine::doctor`]'s job.

use super::command::{Script, ServerCommand};

/// `$1` switch file, `$2` state dir, `$3` the nginx command that dumps the configuration
/// (`nginx -T`), `$4` the one that prints the version. (What holds the color ports is
/// [`super::ports`]'s job.)
pub const DOCTOR_SCRIPT: Script = Script {
    name: "bluegreen-doctor",
    text: include_str!("doctor/doctor.sh"),
};

pub fn read(
    switch_file: &str,
    state_dir: &str,
    nginx_dump: &str,
    nginx_version: &str,
) -> ServerCommand {
    ServerCommand::script(
        "read the server for doctor",
        &DOCTOR_SCRIPT,
        &[switch_file, state_dir, nginx_dump, nginx_version],
    )
    .privileged()
}

/// The script's output split into its sections.
pub fn sections(output: &str) -> std::collections::BTreeMap<String, String> {
    let mut sections = std::collections::BTreeMap::new();
    let mut current = String::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("::section ") {
            current = name.trim().to_owned();
            sections.entry(current.clone()).or_insert_with(String::new);
            continue;
        }
        if let Some(text) = sections.get_mut(&current) {
            text.push_str(line);
            text.push('\n');
        }
    }
    sections
}

/// `nginx -t -q` (the test command) → `nginx -T` (dump) and `nginx -v` (version), keeping the
/// operator's prefix and config flags.
pub fn nginx_variants(test_command: &str) -> (String, String) {
    let words: Vec<&str> = test_command
        .split_whitespace()
        .filter(|w| *w != "-q")
        .collect();
    let replace = |with: &str| {
        if words.contains(&"-t") {
            words
                .iter()
                .map(|w| if *w == "-t" { with } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            format!("nginx {with}")
        }
    };
    (replace("-T"), replace("-v"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real doctor script, here (as root, where `nft list tables` works): who runs it,
    /// what the switch file is (a symlink to an existing file in a writable directory), the
    /// output of the operator's nginx commands, the disk of the state dir's nearest existing
    /// directory, and nft; without `nft` on the PATH, nft is absent.
    #[test]
    fn the_doctor_script_reads_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("service-url.inc");
        std::fs::write(&target, "set $service_url http://127.0.0.1:8081;\n").unwrap();
        let switch = dir.path().join("default");
        std::os::unix::fs::symlink(&target, &switch).unwrap();
        let state_dir = dir.path().join("not/yet/made");
        let command = read(
            switch.to_str().unwrap(),
            state_dir.to_str().unwrap(),
            "echo 'http { include service-url.inc; }'",
            "echo 'nginx version: nginx/1.22.1' >&2",
        );
        let id = |flag: &str| {
            let output = std::process::Command::new("id").arg(flag).output().unwrap();
            String::from_utf8(output.stdout).unwrap()
        };
        let output = crate::testing::run_here(&command, None);
        let found = sections(&output);
        assert_eq!(found["user"], format!("{}{}", id("-un"), id("-u")));
        assert_eq!(
            found["switch"],
            format!("symlink {}\nexists\nwritable\n", target.display())
        );
        assert_eq!(
            found["nginx_config"],
            "http { include service-url.inc; }\n\n"
        );
        assert_eq!(found["nginx_version"], "nginx version: nginx/1.22.1\n");
        let mount = found["disk"].split_whitespace().last().unwrap().to_owned();
        assert!(dir.path().starts_with(&mount), "{found:?}");
        assert_eq!(found["nft"], "usable\n");
        let bare = crate::testing::path_with_only(&[
            "sh", "id", "head", "readlink", "dirname", "df", "tail",
        ]);
        let output = crate::testing::run_here(&command, Some(bare.path()));
        assert_eq!(sections(&output)["nft"], "absent\n");
    }

    #[test]
    fn nginx_commands_keep_the_operators_flags() {
        assert_eq!(
            nginx_variants("/usr/sbin/nginx -p /x -c /x/nginx.conf -t -q"),
            (
                "/usr/sbin/nginx -p /x -c /x/nginx.conf -T".to_owned(),
                "/usr/sbin/nginx -p /x -c /x/nginx.conf -v".to_owned()
            )
        );
        assert_eq!(
            nginx_variants("docker exec web nginx -t"),
            (
                "docker exec web nginx -T".to_owned(),
                "docker exec web nginx -v".to_owned()
            )
        );
        assert_eq!(nginx_variants("true").0, "nginx -T");
    }

    #[test]
    fn sections_are_split() {
        let parsed = sections("::section user\nroot\n0\n::section nft\nabsent\n");
        assert_eq!(parsed["user"], "root\n0\n");
        assert_eq!(parsed["nft"], "absent\n");
    }
}
