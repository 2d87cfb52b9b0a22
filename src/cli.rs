//! The command line: subcommands, and one `--flag` per setting generated from the settings
//! table, so the CLI, the environment, the file and the action inputs can never drift apart.

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::settings::spec::{self, SETTINGS};

pub fn command() -> Command {
    let mut command = Command::new("bluegreen")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Zero-downtime blue/green deploys of a Docker backend to one server over SSH")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("config")
                .long("config")
                .global(true)
                .value_name("FILE")
                .help("settings file (default: ./bluegreen.yml when it exists)"),
        )
        .subcommand(
            Command::new("build")
                .about("build the jar (if any) and the image, push it; print the pushed reference"),
        )
        .subcommand(
            Command::new("deploy")
                .about("blue/green swap of the server to an image")
                .arg(
                    Arg::new("image_ref")
                        .long("image-ref")
                        .value_name("REF")
                        .help("deploy exactly this reference (repo:tag or repo@sha256:…)"),
                )
                .arg(force_flag()),
        )
        .subcommand(
            Command::new("ship")
                .about("build, then deploy (what the GitHub Action runs)")
                .arg(force_flag()),
        )
        .subcommand(
            Command::new("status")
                .about("live color, live image, lock holder, recent history (numbered for rollback --to)")
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("machine-readable output"),
                ),
        )
        .subcommand(
            Command::new("rollback")
                .about("send traffic back to the previous color, or --to an earlier image")
                .arg(
                    Arg::new("to")
                        .long("to")
                        .value_name("N|IMAGE")
                        .help(
                            "N: the Nth newest successful history entry (`status` numbers \
                             them); IMAGE: a digest it ran before (repo@sha256:… or sha256:…; \
                             process mode: release:ID)",
                        ),
                ),
        )
        .subcommand(
            Command::new("unlock")
                .about("remove a held deploy lock, printing who held it")
                .arg(
                    Arg::new("force")
                        .long("force")
                        .action(ArgAction::SetTrue)
                        .help("remove it even when its holder may still be deploying"),
                ),
        )
        .subcommand(
            Command::new("plan")
                .about("print every server command `deploy` would run, change nothing")
                .arg(Arg::new("image_ref").long("image-ref").value_name("REF")),
        )
        .subcommand(Command::new("init").about(
            "write a commented bluegreen.yml for the project here; print the nginx snippet and server steps",
        ))
        .subcommand(Command::new("doctor").about(
            "read-only checks of the server and the settings, one ✓/✗ line each with the fix",
        ))
        .subcommand(
            Command::new("action")
                .about("entry point of the GitHub Action: reads INPUT_* and GITHUB_*, runs ship"),
        );
    for setting in SETTINGS {
        let flag: &'static str = Box::leak(spec::flag_name(setting.name).into_boxed_str());
        let mut help = setting.help.to_owned();
        if let Some(default) = setting.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        help.push_str(&format!(" [env: {}]", spec::env_name(setting.name)));
        if setting.secret {
            help.push_str(" (a secret: refused as a flag, set the variable)");
        }
        command = command.arg(
            Arg::new(setting.name)
                .long(flag)
                .global(true)
                .value_name("VALUE")
                .help(help)
                .help_heading("Settings"),
        );
    }
    command
}

fn force_flag() -> Arg {
    Arg::new("force")
        .long("force")
        .action(ArgAction::SetTrue)
        .help("swap colors even when the image is already live")
}

/// The setting values given as flags.
pub fn setting_flags(matches: &ArgMatches) -> std::collections::BTreeMap<String, String> {
    SETTINGS
        .iter()
        .filter_map(|s| {
            matches
                .get_one::<String>(s.name)
                .map(|v| (s.name.to_owned(), v.clone()))
        })
        .collect()
}

/// Secrets are refused as flags: argv is world-readable in `/proc/PID/cmdline` for as long as
/// the process runs. The error names the variable to use instead.
pub fn refuse_secret_flags(
    flags: &std::collections::BTreeMap<String, String>,
) -> Result<(), crate::failure::Failure> {
    let refused: Vec<String> = SETTINGS
        .iter()
        .filter(|s| s.secret && flags.contains_key(s.name))
        .map(|s| {
            format!(
                "--{} puts a secret on the command line, readable by every local user; \
                 set {} in the environment instead",
                spec::flag_name(s.name),
                spec::env_name(s.name)
            )
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(crate::failure::Failure::config(format!(
        "{}; nothing was run",
        refused.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags_are_refused_naming_the_variable() {
        let matches = command()
            .try_get_matches_from([
                "bluegreen",
                "status",
                "--docker-token",
                "t0k",
                "--port",
                "2",
            ])
            .unwrap();
        let (_, sub) = matches.subcommand().unwrap();
        let error = refuse_secret_flags(&setting_flags(sub)).unwrap_err();
        assert_eq!(
            error.message,
            "--docker-token puts a secret on the command line, readable by every local user; \
             set BLUEGREEN_DOCKER_TOKEN in the environment instead; nothing was run"
        );
        assert!(!error.message.contains("t0k"));
        let fine = command()
            .try_get_matches_from(["bluegreen", "status", "--port", "2"])
            .unwrap();
        assert!(refuse_secret_flags(&setting_flags(fine.subcommand().unwrap().1)).is_ok());
    }
}
