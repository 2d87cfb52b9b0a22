//! Host keys: validating known_hosts text, pinning by fingerprint, explaining mismatches.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Checks that every line is `[marker] hosts keytype base64key [comment]`.
pub fn check_known_hosts(text: &str) -> Result<(), String> {
    let mut entries = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first().is_some_and(|f| f.starts_with('@')) {
            fields.remove(0);
        }
        let valid = fields.len() >= 3
            && KEY_TYPES.contains(&fields[1])
            && fields[2].len() >= 16
            && fields[2]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        if !valid {
            return Err(format!(
                "line {} is not a known_hosts entry (`host keytype key`, as ssh-keyscan prints): `{}`",
                index + 1,
                shorten(line)
            ));
        }
        entries += 1;
    }
    if entries == 0 {
        return Err("contains no host key lines".into());
    }
    Ok(())
}

fn shorten(line: &str) -> String {
    if line.len() > 60 {
        format!(
            "{}…",
            &line[..line.char_indices().nth(60).map_or(line.len(), |(i, _)| i)]
        )
    } else {
        line.to_owned()
    }
}

/// `SHA256:…` fingerprints of the known_hosts lines in `text`, computed by ssh-keygen.
pub async fn fingerprints(text: &str) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keys");
    std::fs::write(&path, text)?;
    let output = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(&path)
        .output()
        .await
        .context("running ssh-keygen -l")?;
    let listing = String::from_utf8_lossy(&output.stdout);
    Ok(listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .collect())
}

/// The host keys the server presents now, as known_hosts lines.
pub async fn scan(host: &str, port: u16) -> Result<String> {
    let output = Command::new("ssh-keyscan")
        .args(["-T", "5", "-p", &port.to_string(), host])
        .output()
        .await
        .context("running ssh-keyscan")?;
    let lines = String::from_utf8_lossy(&output.stdout).to_string();
    if lines.trim().is_empty() {
        bail!("ssh-keyscan could not read a host key from {host}:{port}");
    }
    Ok(lines)
}

/// For `host_fingerprint`: scans the server and keeps only the keys with that fingerprint.
pub async fn pinned_known_hosts(host: &str, port: u16, fingerprint: &str) -> Result<String> {
    let scanned = scan(host, port).await?;
    let mut matching = String::new();
    let mut seen = Vec::new();
    for line in scanned
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let found = fingerprints(line).await?;
        if found.iter().any(|f| f == fingerprint) {
            matching.push_str(line);
            matching.push('\n');
        }
        seen.extend(found);
    }
    if matching.is_empty() {
        bail!(crate::failure::Failure::config(format!(
            "host key of {host}:{port} does not match host_fingerprint: expected {fingerprint}, \
             the server presents {}; refusing to connect (nothing on the server was touched)",
            seen.join(", ")
        )));
    }
    Ok(matching)
}

/// Builds the refusal for a strict host key failure, showing both sides' fingerprints.
pub async fn mismatch_failure(
    host: &str,
    port: u16,
    known_hosts_file: &Path,
) -> crate::failure::Failure {
    let expected = std::fs::read_to_string(known_hosts_file).unwrap_or_default();
    let expected = fingerprints(&expected).await.unwrap_or_default();
    let presented = match scan(host, port).await {
        Ok(lines) => fingerprints(&lines).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let port_flag = if port == 22 {
        String::new()
    } else {
        format!("-p {port} ")
    };
    crate::failure::Failure::config(format!(
        "host key verification of {host}:{port} failed: known_hosts has {}, the server presents {}; \
         refusing to connect (nothing on the server was touched); if the server was really rebuilt, \
         replace known_hosts with the output of `ssh-keyscan {port_flag}{host}`",
        or_none(&expected),
        or_none(&presented)
    ))
}

fn or_none(list: &[String]) -> String {
    if list.is_empty() {
        "no matching key".into()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_known_hosts_lines() {
        let good = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKk3Tw\n# comment\n";
        assert!(check_known_hosts(good).is_ok());
        assert!(check_known_hosts("").unwrap_err().contains("no host key"));
        let bad = check_known_hosts("127.0.0.1 not-a-type AAAA").unwrap_err();
        assert!(bad.contains("line 1"), "{bad}");
        assert!(check_known_hosts("just-a-host").is_err());
    }
}
