//! Every server script, as the server receives it (each [`Script`]'s text, with the pieces
//! `concat!` joins), and the tests that run it on this machine against real processes, sockets
//! and nftables. `scripts/shellcheck.sh` checks these texts (it has
//! [`tests::write_every_script`] write them out); [`tests::every_script_is_listed`] keeps the
//! list whole and each named test real.

use crate::server::command::Script;
use crate::server::{boot, compose, docker, doctor, nft, nginx, ports, process, routes, state};

/// One server script and the tests that execute it: a unit test's function name, or
/// `tests/FILE.rs::NAME` for an integration test (the real binary over real SSH).
pub struct Listed {
    pub script: &'static Script,
    pub tests: &'static [&'static str],
}

/// `{state_dir}/boot` as the install script writes it (boot/restore.sh travels in a
/// here-document inside the install script, where shellcheck does not look).
const BOOT_RESTORE: Script = Script {
    name: "bluegreen-boot",
    text: include_str!("../server/boot/restore.sh"),
};

pub const ALL: &[Listed] = &[
    Listed {
        script: &boot::INSTALL_SCRIPT,
        tests: &[
            "without_systemd_one_reboot_line_per_app_goes_to_the_crontab",
            "tests/reboot.rs::an_ec2_like_server_serves_the_last_verified_version_after_a_reboot",
        ],
    },
    Listed {
        script: &BOOT_RESTORE,
        tests: &[
            "tests/reboot.rs::a_simulated_reboot_is_undone_by_the_boot_script",
            "tests/reboot.rs::an_ec2_like_server_serves_the_last_verified_version_after_a_reboot",
        ],
    },
    Listed {
        script: &boot::STATUS_SCRIPT,
        tests: &["tests/reboot.rs::an_ec2_like_server_serves_the_last_verified_version_after_a_reboot"],
    },
    Listed {
        script: &nft::USERS_SCRIPT,
        tests: &[
            "the_users_script_finds_another_apps_rule_and_a_listener",
            "tests/ownership.rs::a_service_port_another_apps_dnat_rule_uses_is_refused",
        ],
    },
    Listed {
        script: &crate::remote::batch::SCRIPT,
        tests: &[
            "runs_every_command_with_its_own_words_and_stdin",
            "all_at_once_runs_every_command_together_and_reports_in_order",
            "a_batch_that_cannot_start_says_so_and_runs_nothing",
        ],
    },
    Listed {
        script: &state::LOCK_SCRIPT,
        tests: &[
            "the_lock_holder_reads_under_the_lock_then_records_the_entry",
            "a_lock_whose_batch_cannot_start_says_so_once_then_records",
            "tests/lock.rs::a_second_deploy_waits_for_the_first_then_proceeds",
        ],
    },
    Listed {
        script: &state::READ_SCRIPT,
        tests: &["the_state_scripts_record_then_read_back"],
    },
    Listed {
        script: &state::RECORD_SCRIPT,
        tests: &[
            "the_state_scripts_record_then_read_back",
            "a_record_on_a_full_disk_leaves_no_temp_file_and_the_old_state",
        ],
    },
    Listed {
        script: &state::UNLOCK_SCRIPT,
        tests: &[
            "the_unlock_script_ends_the_holder_and_frees_the_lock",
            "tests/lock.rs::unlock_keeps_a_live_deploys_lock_unless_forced_and_names_the_holder",
            "tests/lock.rs::unlock_removes_the_lock_of_a_client_that_is_gone",
        ],
    },
    Listed {
        script: &nginx::WRITE_SCRIPT,
        tests: &[
            "the_write_script_replaces_the_file_keeping_its_mode_and_link",
            "tests/truth.rs::a_symlinked_switch_file_keeps_its_link_and_mode",
        ],
    },
    Listed {
        script: &nginx::DRAIN_SCRIPT,
        tests: &[
            "the_drain_script_waits_for_established_connections",
            "the_drain_script_waits_for_connection_attempts",
            "the_drain_script_waits_for_attempts_sent_through_dnat",
        ],
    },
    Listed {
        script: &docker::PULL_SCRIPT,
        tests: &[
            "tests/deploy.rs::first_deploy_goes_to_blue_then_green_then_blue_without_failed_requests",
            "tests/truth.rs::sigterm_during_a_stuck_pull_is_honoured_and_keeps_the_rollback_container",
        ],
    },
    Listed {
        script: &compose::DETECT_SCRIPT,
        tests: &[
            "the_detect_script_names_the_compose_the_server_has",
            "tests/compose.rs::compose_mode_swaps_services_and_runs_exactly_the_deployed_image",
        ],
    },
    Listed {
        script: &compose::SECRET_ENV_SCRIPT,
        tests: &["the_secret_env_script_gives_compose_the_secrets_from_stdin"],
    },
    Listed {
        script: &ports::PORTS_SCRIPT,
        tests: &[
            "the_script_finds_the_process_listening",
            "tests/migrate.rs::a_hand_started_process_on_the_live_port_is_adopted_then_stopped",
        ],
    },
    Listed {
        script: &ports::STOP_PROCESS_SCRIPT,
        tests: &[
            "the_stop_script_ends_an_old_process_with_term_or_kill",
            "tests/migrate.rs::a_hand_started_process_on_the_live_port_is_adopted_then_stopped",
        ],
    },
    Listed {
        script: &process::PRESENT_SCRIPT,
        tests: &["the_upload_script_keeps_the_newest_and_the_named_releases"],
    },
    Listed {
        script: &process::UPLOAD_SCRIPT,
        tests: &[
            "the_upload_script_keeps_the_newest_and_the_named_releases",
            "tests/process.rs::a_jar_is_deployed_swapped_under_load_and_rolled_back",
        ],
    },
    Listed {
        script: &process::START_SCRIPT,
        tests: &[
            "the_process_scripts_start_report_log_and_stop_a_color",
            "tests/process.rs::a_crashed_live_app_is_restarted_by_its_supervisor",
        ],
    },
    Listed {
        script: &process::STOP_SCRIPT,
        tests: &[
            "the_process_scripts_start_report_log_and_stop_a_color",
            "the_stop_script_kills_a_color_that_ignores_term",
        ],
    },
    Listed {
        script: &process::STATUS_SCRIPT,
        tests: &["the_process_scripts_start_report_log_and_stop_a_color"],
    },
    Listed {
        script: &process::LOGS_SCRIPT,
        tests: &[
            "the_process_scripts_start_report_log_and_stop_a_color",
            "tests/process.rs::a_release_that_exits_at_start_fails_and_the_old_one_serves",
        ],
    },
    Listed {
        script: &routes::CONNECTIONS_SCRIPT,
        tests: &[
            "the_script_counts_what_each_color_gained_since_the_first_reading",
            "without_ss_the_script_reads_proc",
        ],
    },
    Listed {
        script: &doctor::DOCTOR_SCRIPT,
        tests: &[
            "the_doctor_script_reads_this_machine",
            "tests/doctor.rs::doctor_reads_the_server_and_names_each_problem_with_its_fix",
        ],
    },
    Listed {
        script: &crate::engine::traffic::PROBE_SCRIPT,
        tests: &[
            "the_probe_script_finds_nft_and_the_listeners",
            "tests/auto.rs::auto_moves_an_nginx_site_to_nftables_then_swaps_without_reload_or_failure",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.rs` file under `dir`, with its text.
    fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
        found
    }

    /// Every script the code defines is listed once, by a unique name, and every test named
    /// for it exists (so the list cannot claim a test that was renamed or removed).
    #[test]
    fn every_script_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let src = sources(&root.join("src"));
        let defined: Vec<String> = src
            .iter()
            .flat_map(|(path, text)| {
                text.lines()
                    .filter(|line| line.starts_with("pub const ") && line.contains(": Script ="))
                    .map(move |line| format!("{}: {line}", path.display()))
            })
            .collect();
        // BOOT_RESTORE is listed here, not defined as a `pub const` Script.
        assert_eq!(defined.len() + 1, ALL.len(), "defined: {defined:#?}");
        let mut names: Vec<&str> = ALL.iter().map(|listed| listed.script.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a name is listed twice");
        let integration = sources(&root.join("tests"));
        for listed in ALL {
            assert!(
                !listed.tests.is_empty(),
                "{} has no test",
                listed.script.name
            );
            for test in listed.tests {
                let (files, name) = match test.split_once("::") {
                    Some((file, name)) => (
                        integration
                            .iter()
                            .filter(|(path, _)| path.ends_with(file))
                            .collect::<Vec<_>>(),
                        name,
                    ),
                    None => (src.iter().collect(), *test),
                };
                let signature = format!("fn {name}()");
                assert!(
                    files.iter().any(|(_, text)| text.contains(&signature)),
                    "{}: no test {test}",
                    listed.script.name
                );
            }
        }
    }

    /// Writes each script as `NAME.sh` into `$BLUEGREEN_SCRIPTS_OUT`, for shellcheck.
    #[test]
    #[ignore = "scripts/shellcheck.sh runs it"]
    fn write_every_script() {
        let out = std::env::var("BLUEGREEN_SCRIPTS_OUT")
            .expect("BLUEGREEN_SCRIPTS_OUT names the directory to write the scripts into");
        for listed in ALL {
            let path = std::path::Path::new(&out).join(format!("{}.sh", listed.script.name));
            std::fs::write(path, listed.script.text).unwrap();
        }
    }
}
