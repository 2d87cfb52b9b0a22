//! The boot hook: `{state_dir}/boot`, a script each deploy and rollback keeps current, that
//! restores the last verified live color after a server reboot (the nftables DNAT rule; in
//! process mode the color's app), registered to run at boot as a systemd unit
//! `bluegreen-boot-{app}.service` or, without systemd, an `@reboot` line in the SSH user's crontab.

use super::command::{Script, ServerCommand};
use super::{nft, process};
use crate::color::Color;
use crate::settings::{Config, Mode, TrafficSwitch};

/// Writes `{state_dir}/boot` and registers it; prints `boot-hook systemd|cron|none …`.
/// The body of `{state_dir}/boot` (restore.sh) and the process start script it runs come in
/// here-documents, so the plan shows values, not scripts.
pub const INSTALL_SCRIPT: Script = Script {
    name: "bluegreen-boot-install",
    text: concat!(
        "restore=$(cat <<'BLUEGREEN_RESTORE'\n",
        include_str!("boot/restore.sh"),
        "BLUEGREEN_RESTORE\n)\nstart=$(cat <<'BLUEGREEN_START'\n",
        include_str!("process/start.sh"),
        "BLUEGREEN_START\n)\n",
        include_str!("boot/install.sh")
    ),
};

/// Prints whether the boot hook will run (`systemd enabled`, `cron`, `missing`, …).
pub const STATUS_SCRIPT: Script = Script {
    name: "bluegreen-boot-status",
    text: include_str!("boot/status.sh"),
};

pub const INSTALL_PURPOSE: &str = "keep the boot hook current";

/// The command that (re)writes the boot script and registers it. Its content does not depend
/// on which color is live: the script reads that from state.json at boot, so putting back
/// state.json after a failed verification also puts back what the boot restores.
pub fn install(config: &Config) -> ServerCommand {
    let per_color = |color: Color| {
        let port = config.port_of(color);
        let ruleset = match config.traffic_switch {
            TrafficSwitch::Nftables { service_port, .. } => {
                nft::ruleset(&nft::table_name(&config.app_name), service_port, port)
            }
            _ => String::new(),
        };
        let run = match &config.mode {
            Mode::Process(process_mode) => {
                process::render_run_command(&process_mode.run_command, color, port)
            }
            _ => String::new(),
        };
        (port.to_string(), ruleset, run)
    };
    let (blue_port, nft_blue, run_blue) = per_color(Color::Blue);
    let (green_port, nft_green, run_green) = per_color(Color::Green);
    let sudo = if config.sudo { "sudo -n" } else { "" };
    ServerCommand::script(
        INSTALL_PURPOSE,
        &INSTALL_SCRIPT,
        &[
            &config.state_dir,
            &config.app_name,
            &blue_port,
            &green_port,
            &nft_blue,
            &nft_green,
            &run_blue,
            &run_green,
            sudo,
        ],
    )
}

/// Reads whether the boot hook will run.
pub fn status(config: &Config) -> ServerCommand {
    ServerCommand::script(
        "read the boot hook",
        &STATUS_SCRIPT,
        &[&config.app_name, &config.state_dir],
    )
}

/// What [`STATUS_SCRIPT`] found.
#[derive(Debug, PartialEq)]
pub enum Hook {
    SystemdEnabled,
    SystemdDisabled,
    Cron,
    Missing,
}

/// Parses [`STATUS_SCRIPT`]'s output: the hook, and whether the script exists.
pub fn parse_status(output: &str) -> (Hook, bool) {
    let mut lines = output.lines().map(str::trim);
    let hook = match lines.next() {
        Some("systemd enabled") => Hook::SystemdEnabled,
        Some("systemd disabled") => Hook::SystemdDisabled,
        Some("cron") => Hook::Cron,
        _ => Hook::Missing,
    };
    (hook, lines.next() == Some("script yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_hook_status() {
        assert_eq!(
            parse_status("systemd enabled\nscript yes\n"),
            (Hook::SystemdEnabled, true)
        );
        assert_eq!(parse_status("cron\nscript no\n"), (Hook::Cron, false));
        assert_eq!(parse_status("missing\nscript no\n"), (Hook::Missing, false));
        assert_eq!(parse_status(""), (Hook::Missing, false));
    }
}
