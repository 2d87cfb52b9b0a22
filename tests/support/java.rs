//! A minimal JRE base image made on this machine: jlink a runtime with the modules the Java
//! demo needs, add the shared libraries it links, and `docker import` the tree.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::sh;

pub const JRE_IMAGE: &str = "bluegreen-test/jre:17";

pub fn jre_base_image() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let exists = Command::new("docker")
            .args(["image", "inspect", JRE_IMAGE])
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            build_jre_image();
        }
    });
    JRE_IMAGE
}

fn build_jre_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    let jre = root.join("opt/jre");
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    sh(Command::new("jlink")
        .args([
            "--add-modules",
            "java.base,jdk.httpserver",
            "--strip-debug",
            "--no-header-files",
            "--no-man-pages",
            "--output",
        ])
        .arg(&jre));
    let mut libraries = String::new();
    for binary in walk(&jre) {
        if let Ok(output) = Command::new("ldd").arg(&binary).output() {
            libraries.push_str(&String::from_utf8_lossy(&output.stdout));
        }
    }
    for line in libraries.lines() {
        let path = line
            .split("=>")
            .last()
            .unwrap_or(line)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if path.starts_with('/') && Path::new(path).exists() {
            let target = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(path, &target).unwrap();
        }
    }
    let tar = dir.path().join("rootfs.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    sh(Command::new("docker")
        .args(["import"])
        .arg(&tar)
        .arg(JRE_IMAGE));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "so")
            || path.parent().is_some_and(|p| p.ends_with("bin"))
        {
            files.push(path);
        }
    }
    files
}
