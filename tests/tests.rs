//! Integration tests: the real binary against real sshd, nginx, Docker and a private registry
//! on loopback (see `support`). The only faked component anywhere is the GitHub API.

mod support;

mod action;
mod build;
mod compose;
mod config;
mod deploy;
mod doctor;
mod hooks;
mod lock;
mod migrate;
mod process;
mod resilience;
mod truth;
