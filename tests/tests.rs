//! Integration tests: the real binary against real sshd, nginx, Docker and a private registry
//! on loopback (see `support`). The only faked component anywhere is the GitHub API.

mod support;

mod action;
mod action_runner;
mod auto;
mod bake;
mod bastion;
mod build;
mod compose;
mod config;
mod deploy;
mod doctor;
mod hooks;
mod impact;
mod leaks;
mod lock;
mod migrate;
mod newcomer;
mod ownership;
mod process;
mod readme;
mod reboot;
mod recipes;
mod resilience;
mod rollback_to;
mod truth;
mod validation;
mod verify;
