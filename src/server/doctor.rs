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
