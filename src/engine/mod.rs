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
pub mod verify;

use crate::printer::Printer;
use crate::remote::Host;
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
}
