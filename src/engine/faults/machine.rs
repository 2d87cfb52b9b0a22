//! What the invariants read of a server after a run, and how a run is made on it: the same
//! questions of the fake operating system ([`FakeOs`]: the real scripts ran, the answers come
//! from the stand-ins' state files) and of the older in-memory fake ([`Server`], still used
//! where the fake OS cannot yet stand in).

use super::Command;
use crate::engine::swap::Summary;
use crate::settings::Config;
use crate::testing::fake_host::Server;
use crate::testing::fake_os::{FakeOs, FaultKind};

/// A fake server the fault matrix can run bluegreen on and read facts from.
pub(crate) trait Machine: Sized {
    /// A copy to run a case on, as configured by `config` (process mode: with apps of its own).
    fn copy(&self, config: &Config) -> Self;
    /// (port, image) of what serves through nginx: a running, healthy app.
    fn serving(&self) -> Option<(u16, String)>;
    fn lock_held(&self) -> bool;
    fn history_len(&self) -> usize;
    fn state(&self) -> serde_json::Value;
    /// The digest reference (process mode: the release reference) of tag `v1`, `bad`…
    fn digest_of(&self, tag: &str) -> String;
    /// (port, image) of every container or app that runs.
    fn running(&self) -> Vec<(u16, String)>;
    /// Every command run on it so far, rendered without sudo.
    fn log(&self) -> &[String];
    /// A first reading of the connections is left on the server.
    fn leftover_reading(&self) -> bool;
    /// Why the server shows that something not bluegreen's was touched (an unrelated process
    /// signalled, another app's traffic rerouted), if it does.
    fn untouched(&self) -> Result<(), String>;
    /// Runs `command` with `fault` injected; `None` when the fault killed bluegreen.
    async fn run(
        config: &Config,
        machine: Self,
        command: Command,
        fault: Option<(usize, FaultKind)>,
    ) -> (Self, Option<anyhow::Result<Summary>>);
}

impl Machine for FakeOs {
    fn copy(&self, config: &Config) -> Self {
        super::on_fake_os::copy(config, self)
    }
    fn serving(&self) -> Option<(u16, String)> {
        FakeOs::serving(self)
    }
    fn lock_held(&self) -> bool {
        FakeOs::lock_held(self)
    }
    fn history_len(&self) -> usize {
        FakeOs::history_len(self)
    }
    fn state(&self) -> serde_json::Value {
        FakeOs::state(self)
    }
    fn digest_of(&self, tag: &str) -> String {
        FakeOs::digest_of(self, &format!("reg.example/app:{tag}"))
    }
    fn running(&self) -> Vec<(u16, String)> {
        let mut running: Vec<(u16, String)> = self
            .containers()
            .into_values()
            .filter(|c| c.running)
            .map(|c| (c.port, c.image_ref))
            .collect();
        running.extend(self.running_apps());
        running
    }
    fn log(&self) -> &[String] {
        &self.log
    }
    fn leftover_reading(&self) -> bool {
        FakeOs::leftover_reading(self)
    }
    fn untouched(&self) -> Result<(), String> {
        FakeOs::untouched(self)
    }
    async fn run(
        config: &Config,
        machine: Self,
        command: Command,
        fault: Option<(usize, FaultKind)>,
    ) -> (Self, Option<anyhow::Result<Summary>>) {
        super::on_fake_os::run(config, machine, command, fault).await
    }
}

impl Machine for Server {
    fn copy(&self, _config: &Config) -> Self {
        self.clone()
    }
    fn serving(&self) -> Option<(u16, String)> {
        super::serving(self)
    }
    fn lock_held(&self) -> bool {
        self.lock_held
    }
    fn history_len(&self) -> usize {
        Server::history_len(self)
    }
    fn state(&self) -> serde_json::Value {
        super::state_of(self)
    }
    fn digest_of(&self, tag: &str) -> String {
        super::digest_of(self, tag)
    }
    fn running(&self) -> Vec<(u16, String)> {
        self.containers
            .values()
            .filter(|c| c.running)
            .map(|c| (c.port, c.image_ref.clone()))
            .collect()
    }
    fn log(&self) -> &[String] {
        &self.log
    }
    fn leftover_reading(&self) -> bool {
        super::leftover_reading(self)
    }
    fn untouched(&self) -> Result<(), String> {
        Ok(())
    }
    async fn run(
        config: &Config,
        machine: Self,
        command: Command,
        fault: Option<(usize, FaultKind)>,
    ) -> (Self, Option<anyhow::Result<Summary>>) {
        super::run(config, machine, command, fault).await
    }
}
