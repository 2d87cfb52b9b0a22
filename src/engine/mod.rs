//! The blue/green engine: observe the server, then run the swap as a runbook of short steps.

pub mod bake;
pub mod cancel;
pub mod counts;
pub mod deploy;
pub mod doctor;
#[cfg(test)]
mod faults;
pub mod health;
pub mod impact;
#[cfg(test)]
mod impact_runs;
pub mod lock;
pub mod observe;
pub mod plan;
pub mod record;
pub mod rollback;
pub mod runbook;
pub mod runtime;
pub mod status;
pub mod swap;
pub mod switch;
pub mod traffic;
pub mod unlock;
pub mod verify;

use crate::printer::Printer;
use crate::remote::batch::Ran;
use crate::remote::{Host, Output};
use crate::server::ServerCommand;
use crate::settings::Config;

pub use cancel::Cancel;
pub use runtime::Runtime;

/// What every step needs.
pub struct Ctx<'a, H: Host> {
    pub config: &'a Config,
    pub host: &'a H,
    pub printer: &'a Printer,
    pub runtime: Runtime<'a>,
    pub cancel: Cancel,
    /// For the run-aware lock and the older-commit check; `None` skips both.
    pub github: Option<&'a crate::github::GitHub>,
    /// Results of commands that already ran in a batch, each taken by the one that needs it.
    pub prefetched: Prefetched,
}

impl<H: Host> Ctx<'_, H> {
    /// Runs `command`, or takes its result when a batch already ran it.
    pub async fn run(&self, command: &ServerCommand) -> anyhow::Result<Output> {
        Ok(self.run_timed(command).await?.output)
    }

    /// [`Ctx::run`], with a non-zero exit as the error [`crate::remote::run_ok`] gives.
    pub async fn run_ok(&self, command: &ServerCommand) -> anyhow::Result<Output> {
        Ok(self.run_ok_timed(command).await?.output)
    }

    /// [`Ctx::run`], and how long the command took on the server (or here, with the trip).
    pub async fn run_timed(&self, command: &ServerCommand) -> anyhow::Result<Ran> {
        if let Some(ran) = self.prefetched.take(command) {
            self.printer.ran_earlier(ran.took.unwrap_or_default());
            return Ok(ran);
        }
        let started = std::time::Instant::now();
        let output = self.host.run(command).await?;
        Ok(Ran {
            output,
            took: Some(started.elapsed()),
        })
    }

    /// [`Ctx::run_ok`], timed as [`Ctx::run_timed`].
    pub async fn run_ok_timed(&self, command: &ServerCommand) -> anyhow::Result<Ran> {
        let Ran { output, took } = self.run_timed(command).await?;
        let output = crate::remote::succeeded(command, output, self.host.sudo())?;
        Ok(Ran { output, took })
    }
}

/// Commands a batch ran ahead of the steps that need their results.
#[derive(Default)]
pub struct Prefetched(std::sync::Mutex<Vec<(ServerCommand, Ran)>>);

impl Prefetched {
    pub fn put(&self, command: ServerCommand, ran: Ran) {
        self.commands().push((command, ran));
    }

    /// The result of `command` (the exact same command), once.
    pub fn take(&self, command: &ServerCommand) -> Option<Ran> {
        let mut commands = self.commands();
        let at = commands.iter().position(|(ran, _)| ran == command)?;
        Some(commands.remove(at).1)
    }

    /// Forgets results nobody took (they would be stale later).
    pub fn clear(&self) {
        self.commands().clear();
    }

    fn commands(&self) -> std::sync::MutexGuard<'_, Vec<(ServerCommand, Ran)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
