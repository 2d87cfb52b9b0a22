//! The one redaction point for everything that leaves the process: the terminal and the
//! Actions log (through the printer), the step summary, the outputs and the GitHub API.
//!
//! Three jobs: known secrets become `***`; text that the server or a build produced (container
//! logs, `lock.json`, build output) can never become a workflow command (no CR/LF injection, no
//! line that starts with `::`, no `##[` anywhere, which the runner also parses); and values put
//! into workflow commands are escaped the way GitHub documents (`%`, CR, LF; plus `:` and `,` in
//! properties), so the runner decodes exactly what we meant.

use std::sync::{Arc, RwLock};

/// Cheap to clone: every clone sees secrets registered later.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

/// Lines of a multi-line secret shorter than this are not replaced on their own (`-----END`…
/// lines of a key would otherwise blank out ordinary words).
const MIN_SECRET_LINE: usize = 8;

impl Redactor {
    /// Registers a secret: the whole value and each of its (long enough) lines.
    pub fn add(&self, secret: &str) {
        if secret.trim().is_empty() {
            return;
        }
        let mut known = self.secrets.write().expect("not poisoned");
        let mut candidates = vec![secret.to_owned(), secret.trim().to_owned()];
        candidates.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|line| line.len() >= MIN_SECRET_LINE)
                .map(str::to_owned),
        );
        for candidate in candidates {
            if !candidate.is_empty() && !known.contains(&candidate) {
                known.push(candidate);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Known secrets replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.read().expect("not poisoned").iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }

    /// Text from outside (server, build, container): redacted, one line per `\n`, each made
    /// harmless for the runner's command parser.
    pub fn untrusted_lines(&self, text: &str) -> Vec<String> {
        self.redact(text)
            .split(['\n', '\r'])
            .filter(|line| !line.is_empty())
            .map(neutralize_commands)
            .collect()
    }

    /// Text from outside, as one line (CR/LF become ` / `).
    pub fn untrusted(&self, text: &str) -> String {
        self.untrusted_lines(text).join(" / ")
    }
}

/// A line the Actions runner cannot read as a command: no `::` at its (trimmed) start, no
/// `##[` anywhere. The change stays visible to a human reader.
pub fn neutralize_commands(line: &str) -> String {
    let mut line = line.to_owned();
    while line.contains("##[") {
        line = line.replace("##[", "## [");
    }
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("::") {
        let indent = &line[..line.len() - trimmed.len()];
        return format!("{indent}: :{rest}");
    }
    line
}

/// The data part of a workflow command (`::error::DATA`), escaped as the runner decodes it.
pub fn escape_data(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value of a workflow command (`::error title=VALUE::`).
#[allow(dead_code)]
pub fn escape_property(value: &str) -> String {
    escape_data(value).replace(':', "%3A").replace(',', "%2C")
}

/// A token nobody can guess, for `::stop-commands::`: 128 bits from the kernel.
pub fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: still unpredictable enough for a log marker (time and pid).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ u128::from(std::process::id()) << 64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_their_lines_become_stars() {
        let redactor = Redactor::default();
        redactor.add("-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----");
        redactor.add("tok3n-value");
        assert_eq!(redactor.redact("token tok3n-value here"), "token *** here");
        assert_eq!(redactor.redact("line AAAABBBBCCCCDDDD"), "line ***");
        let clone = redactor.clone();
        redactor.add("later-secret");
        assert_eq!(clone.redact("a later-secret"), "a ***");
    }

    #[test]
    fn untrusted_text_never_becomes_a_workflow_command() {
        let redactor = Redactor::default();
        assert_eq!(
            redactor.untrusted_lines(
                "ok\r::set-output name=x::1\n  ::add-mask::y\nx ##[set-output name=a;]b"
            ),
            vec![
                "ok",
                ": :set-output name=x::1",
                "  : :add-mask::y",
                "x ## [set-output name=a;]b"
            ]
        );
        assert_eq!(neutralize_commands("###[x"), "### [x");
        assert_eq!(redactor.untrusted("a\nb"), "a / b");
    }

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(escape_data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
