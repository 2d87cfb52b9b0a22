//! bluegreen: zero-downtime blue/green deploys of a Docker backend to one server over SSH.

mod action;
mod app;
mod build;
mod cli;
mod color;
mod engine;
mod failure;
mod github;
mod phases;
mod printer;
mod remote;
mod server;
mod settings;
#[cfg(test)]
mod testing;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let printer = printer::Printer::detect();
    match app::run(matches, &printer).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&format!("{error:#}"));
            ExitCode::from(failure::exit_code(&error))
        }
    }
}
