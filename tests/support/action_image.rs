//! The action's runtime image, built here without any registry: a Debian base made with
//! debootstrap and `docker import`, a "builder" holding the already compiled binary, and the
//! project's own Dockerfile on top of both (apt works; registries do not).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::{binary, sh};

pub const BASE_IMAGE: &str = "bluegreen-test/debian:bookworm";

/// A tag naming the content (binary and Dockerfile), so concurrent runs of the suite from
/// other checkouts never replace each other's image.
fn content_tag(repository: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(binary()).unwrap().hash(&mut hasher);
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    std::fs::read(dockerfile).unwrap().hash(&mut hasher);
    format!("{repository}:{:016x}", hasher.finish())
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .unwrap()
        .status
        .success()
}

fn debian_base() {
    if image_exists(BASE_IMAGE) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    sh(Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&root)
        .arg("http://deb.debian.org/debian"));
    let tar = dir.path().join("rootfs.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    sh(Command::new("docker")
        .arg("import")
        .arg(&tar)
        .arg(BASE_IMAGE));
}

/// Builds (once per test run) the action image from the current binary and Dockerfile.
pub fn action_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let action_image = content_tag("bluegreen-test/action");
        if image_exists(&action_image) {
            return action_image;
        }
        let prebuilt_image = content_tag("bluegreen-test/prebuilt");
        debian_base();
        let context = tempfile::tempdir().unwrap();
        std::fs::copy(binary(), context.path().join("bluegreen")).unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            format!("FROM {BASE_IMAGE}\nCOPY bluegreen /prebuilt/bluegreen\n"),
        )
        .unwrap();
        sh(Command::new("docker")
            .args(["build", "--quiet", "-t", &prebuilt_image])
            .arg(context.path())
            .env("DOCKER_BUILDKIT", "0"));
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        sh(Command::new("docker")
            .args(["build", "--quiet", "-t", &action_image])
            .args([
                "--build-arg",
                &format!("BUILDER={prebuilt_image}"),
                "--build-arg",
                &format!("RUNTIME_BASE={BASE_IMAGE}"),
            ])
            .args([
                "--build-arg",
                "DOCKER_CLI_URL=",
                "--build-arg",
                "BUILDX_URL=",
                "--build-arg",
                "JDK_PACKAGE=",
            ])
            .arg(repo)
            .env("DOCKER_BUILDKIT", "0"));
        action_image
    })
}
