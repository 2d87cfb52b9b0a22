//! A private temp directory of one run: the SSH connection's (key, known_hosts, the ssh config
//! and the control socket) or docker's (the registry login). Created 0700 and its files 0600 from the first byte (no
//! window in which another local user can read them); removed when dropped. A directory left
//! behind by a killed run (SIGKILL cannot be caught) is removed by the next run.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Directories are named `bluegreen-{purpose}-{pid}-…`, so abandoned ones can be found.
const PREFIX: &str = "bluegreen-";

pub struct PrivateDir {
    dir: tempfile::TempDir,
}

impl PrivateDir {
    /// `purpose`: one word without `-` (`ssh`, `docker`).
    pub fn create(purpose: &str) -> Result<PrivateDir> {
        remove_abandoned(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{purpose}-{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .context("creating a private temp directory for the SSH connection")?;
        Ok(PrivateDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` with mode 0600 set at creation; a newline is ensured at the end (OpenSSH
    /// refuses a key without one).
    pub fn write(&self, name: &str, content: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        let mut text = content.replace("\r\n", "\n");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// Removes our own directories whose run is gone (its process id no longer exists).
fn remove_abandoned(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    // /proc/self belongs to this process's user.
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').nth(1))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if ours && !alive {
            let _best_effort = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_0700_files_0600_gone_on_drop() {
        let dir = PrivateDir::create("test").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        let key = dir.write("key", "secret").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "secret\n");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn abandoned_directories_are_removed_live_ones_kept() {
        let temp = tempfile::tempdir().unwrap();
        // 4194305 is above the highest pid Linux allows; our own pid is alive.
        let dead = temp.path().join(format!("{PREFIX}ssh-4194305-abc"));
        let dead_docker = temp.path().join(format!("{PREFIX}docker-4194305-abc"));
        let live = temp
            .path()
            .join(format!("{PREFIX}ssh-{}-abc", std::process::id()));
        let other = temp.path().join("bluegreen-sandbox123");
        for dir in [&dead, &dead_docker, &live, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        remove_abandoned(temp.path());
        assert!(!dead.exists() && !dead_docker.exists());
        assert!(live.exists() && other.exists());
    }
}
