//! `GITHUB_OUTPUT`: `name<<DELIMITER` … `DELIMITER` for every value, so multi-line values and
//! values containing `=` can never be misread.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

pub fn render(outputs: &[(&str, String)], delimiter: &str) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    text
}

/// A delimiter that occurs in none of the values.
pub fn delimiter(outputs: &[(&str, String)]) -> String {
    let mut n = std::process::id() as u64 ^ 0x5bd1e995;
    loop {
        let candidate = format!("ghadelimiter_{n:x}");
        if outputs.iter().all(|(_, value)| !value.contains(&candidate)) {
            return candidate;
        }
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
}

pub fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_outputs() {
        let outputs = [("color", "green".to_owned()), ("note", "a\nb=c".to_owned())];
        assert_eq!(
            render(&outputs, "EOF1"),
            "color<<EOF1\ngreen\nEOF1\nnote<<EOF1\na\nb=c\nEOF1\n"
        );
        // A value that contains the would-be delimiter gets another one.
        let plain = [("x", "v".to_owned())];
        let first_choice = delimiter(&plain);
        let tricky = [("x", format!("a\n{first_choice}\nb"))];
        let chosen = delimiter(&tricky);
        assert_ne!(chosen, first_choice);
        assert!(!tricky[0].1.contains(&chosen));
    }
}
