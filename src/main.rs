//! bluegreen: zero-downtime blue/green deploys of a Docker backend to one server over SSH.

mod action;
mod app;
mod build;
mod cli;
mod color;
mod engine;
mod environment;
mod failure;
mod github;
mod init;
mod phases;
mod printer;
mod redact;
mod remote;
mod server;
mod settings;
#[cfg(test)]
mod testing;

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, while this is the only thread: no child process may inherit a secret.
    let env = environment::take_and_scrub();
    let matches = cli::command().get_matches();
    let printer = printer::Printer::detect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    match runtime.block_on(app::run(matches, env, &printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&format!("{error:#}"));
            ExitCode::from(failure::exit_code(&error))
        }
    }
}
