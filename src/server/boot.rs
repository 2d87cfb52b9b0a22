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

/// Whether a reboot loses what serves: the nftables rule (the kernel's) or, in process mode,
/// the app. Containers restart by their policy and nginx keeps its switch file.
pub fn needed(config: &Config) -> bool {
    matches!(config.mode, Mode::Process(_))
        || matches!(
            config.traffic_switch,
            TrafficSwitch::Nftables { .. } | TrafficSwitch::Auto { .. }
        )
}

/// What a deploy says when [`INSTALL_SCRIPT`] could not register the hook the site needs.
pub fn warning(config: &Config, output: &str) -> Option<String> {
    let reason = output
        .lines()
        .find_map(|line| line.strip_prefix("boot-hook none "))?;
    needed(config).then(|| {
        format!(
            "no boot hook ({reason}): after a reboot nothing restores the live color until the \
             next deploy; `bluegreen doctor` says how to fix it"
        )
    })
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
    use std::process::Command;

    fn config(pairs: &[(&str, &str)]) -> Config {
        crate::testing::config(pairs)
    }

    #[test]
    fn the_install_carries_each_colors_ruleset_and_run_command() {
        let config = config(&[
            ("app_name", "shop"),
            ("run_command", "sh {artifact} {port}"),
            ("traffic_switch", "nftables"),
            ("service_port", "8080"),
            ("blue_port", "8081"),
            ("green_port", "8082"),
            ("state_dir", "/srv/shop"),
            ("username", "deploy"),
        ]);
        let command = install(&config);
        let args = &command.argv[4..];
        assert_eq!(&args[..4], ["/srv/shop", "shop", "8081", "8082"]);
        assert_eq!(args[4], nft::ruleset("bluegreen_shop", 8080, 8081));
        assert_eq!(args[5], nft::ruleset("bluegreen_shop", 8080, 8082));
        assert_eq!(args[6], "sh \"$BLUEGREEN_ARTIFACT\" 8081");
        assert_eq!(args[8], "sudo -n");
        assert!(!command.privileged);
        assert!(command.render(true).starts_with(
            "sh -c <bluegreen-boot-install> bluegreen-boot-install /srv/shop shop 8081 8082"
        ));
        // Containers behind nginx: nothing to restore but the (empty) values.
        let plain = install(&self::config(&[("image", "org/app"), ("username", "root")]));
        assert_eq!(&plain.argv[8..], ["", "", "", "", ""]);
    }

    /// The real install script where PID 1 is not systemd (this machine), with a `crontab`
    /// that keeps its table in a file: one line per app, written once, another app's kept.
    #[test]
    fn without_systemd_one_reboot_line_per_app_goes_to_the_crontab() {
        if std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let table = dir.path().join("table");
        std::fs::write(
            &table,
            "@reboot /bin/sh /other/boot # bluegreen-boot shop-eu\n",
        )
        .unwrap();
        std::fs::write(
            bin.join("crontab"),
            format!(
                "#!/bin/sh\nif [ \"$1\" = -l ]; then cat {0}; else cat > {0}; fi\n",
                table.display()
            ),
        )
        .unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(bin.join("crontab"))
            .status()
            .unwrap();
        let state = dir.path().join("state");
        let config = config(&[
            ("app_name", "shop"),
            ("image", "org/app"),
            ("traffic_switch", "nftables"),
            ("service_port", "8080"),
            ("state_dir", state.to_str().unwrap()),
        ]);
        let command = install(&config);
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        for _ in 0..2 {
            let output = Command::new(&command.argv[0])
                .args(&command.argv[1..])
                .env("PATH", &path)
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&output.stdout), "boot-hook cron\n");
        }
        let boot = state.join("boot");
        assert_eq!(
            std::fs::read_to_string(&table).unwrap(),
            format!(
                "@reboot /bin/sh /other/boot # bluegreen-boot shop-eu\n\
                 @reboot /bin/sh '{}' # bluegreen-boot shop\n",
                boot.display()
            )
        );
        let script = std::fs::read_to_string(&boot).unwrap();
        assert!(script.starts_with("#!/bin/sh\n"), "{script}");
        assert!(script.contains("dnat to 127.0.0.1:8082"), "{script}");
        let syntax = Command::new("sh").arg("-n").arg(&boot).status().unwrap();
        assert!(syntax.success());
    }

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

    #[test]
    fn a_deploy_warns_only_when_the_site_needs_the_missing_hook() {
        let nft = config(&[("image", "org/app"), ("traffic_switch", "nftables")]);
        assert_eq!(
            warning(&nft, "boot-hook none no systemd and no crontab\n").as_deref(),
            Some(
                "no boot hook (no systemd and no crontab): after a reboot nothing restores the \
                 live color until the next deploy; `bluegreen doctor` says how to fix it"
            )
        );
        assert_eq!(warning(&nft, "boot-hook cron\n"), None);
        let nginx = config(&[("image", "org/app"), ("traffic_switch", "nginx")]);
        assert_eq!(warning(&nginx, "boot-hook none no crontab\n"), None);
    }
}
