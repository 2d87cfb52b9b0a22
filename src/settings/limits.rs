//! Checks of values the server would misread or refuse later: a URL path with characters no
//! request line may carry, and environment values longer than Linux, docker or the one SSH
//! command line accept. Each returns the message for its setting; [`super::config`] names it.

use crate::server::command::quote;

/// Linux refuses (`E2BIG`) any one argument or environment string longer than this
/// (`MAX_ARG_STRLEN`, 128 KiB, less its terminating NUL). sshd runs the whole remote command
/// as one such argument (`sh -c COMMAND`), and every `KEY=VALUE` reaches the app through execve.
pub const MAX_ARG_BYTES: usize = 131_071;

/// docker's `--env-file` reader (a `bufio.Scanner`) refuses a longer line ("token too long");
/// container mode passes `secret_env` that way, on stdin.
pub const MAX_ENV_FILE_LINE: usize = 65_535;

/// The share of the one SSH command line `env` may take in container and compose mode, where
/// its values travel on argv: the rest of `docker run` (labels, image, run_args) needs room.
pub const MAX_ENV_ON_ARGV: usize = 96 * 1024;

/// A path as it goes into an HTTP request line: RFC 3986 path and query characters only, `%`
/// followed by two hex digits. A space would split the request line.
pub fn check_url_path(path: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c);
    if let Some(bad) = path.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{}` contains {}, which cannot be in a URL path (percent-encode it, e.g. %20 for a space)",
            path.escape_default(),
            describe(bad)
        ));
    }
    let bytes = path.as_bytes();
    for (at, _) in path.match_indices('%') {
        let hex = bytes.get(at + 1..at + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(format!(
                "`{path}` has a `%` not followed by two hex digits (write %25 for a literal %)"
            ));
        }
    }
    Ok(())
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("the control character {}", c.escape_default()),
        c => format!("`{c}`"),
    }
}

/// Where the app's environment travels, which decides the limits that apply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EnvRoute {
    /// `docker run --env` (env) and `--env-file /dev/stdin` (secret_env).
    Container,
    /// `env KEY=VALUE docker compose …` (env) and exported from stdin (secret_env).
    Compose,
    /// Both on stdin to the start script, then exported to the app.
    Process,
}

/// The problems of one setting's `KEY=VALUE` pairs, each a message for that setting.
pub fn check_env_sizes(pairs: &[(String, &str)], secret: bool, route: EnvRoute) -> Vec<String> {
    let mut problems = Vec::new();
    let line_limit = if secret && route == EnvRoute::Container {
        (
            MAX_ENV_FILE_LINE,
            "docker's --env-file reader, which receives secret_env",
        )
    } else {
        (MAX_ARG_BYTES, "Linux's limit for one environment string")
    };
    for (key, value) in pairs {
        let bytes = key.len() + 1 + value.len();
        if bytes > line_limit.0 {
            problems.push(format!(
                "{key} is {bytes} bytes as KEY=VALUE; at most {} ({})",
                line_limit.0, line_limit.1
            ));
        }
    }
    if !secret && route != EnvRoute::Process {
        let on_argv: usize = pairs
            .iter()
            .map(|(key, value)| quote(&format!("{key}={value}")).len() + 1)
            .sum();
        if on_argv > MAX_ENV_ON_ARGV {
            problems.push(format!(
                "{on_argv} bytes on the server's command line; at most {MAX_ENV_ON_ARGV} (the whole \
                 server command is one argument of at most {MAX_ARG_BYTES} bytes); move large \
                 values to secret_env, which travels on stdin"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths() {
        assert!(check_url_path("/actuator/health").is_ok());
        assert!(check_url_path("/health?full=1&x=%20").is_ok());
        assert!(check_url_path("/my health")
            .unwrap_err()
            .contains("a space"));
        assert!(check_url_path("/a\tb").is_err());
        assert!(check_url_path("/a\"b").is_err());
        assert!(check_url_path("/caf\u{e9}").is_err());
        assert!(check_url_path("/100%").is_err());
        assert!(check_url_path("/%zz").is_err());
    }

    #[test]
    fn env_sizes() {
        let big = "x".repeat(70_000);
        let pairs = vec![("BIG".to_owned(), big.as_str())];
        assert!(check_env_sizes(&pairs, false, EnvRoute::Process).is_empty());
        assert_eq!(check_env_sizes(&pairs, true, EnvRoute::Container).len(), 1);
        assert!(check_env_sizes(&pairs, true, EnvRoute::Compose).is_empty());
        let huge = "x".repeat(MAX_ARG_BYTES);
        let pairs = vec![("HUGE".to_owned(), huge.as_str())];
        assert_eq!(check_env_sizes(&pairs, true, EnvRoute::Process).len(), 1);
        // On argv: over the line's share, and over the one-string limit.
        assert_eq!(check_env_sizes(&pairs, false, EnvRoute::Container).len(), 2);
    }
}
