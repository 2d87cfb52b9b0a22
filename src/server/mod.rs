//! What runs on the server, as values: command builders per subsystem. Nothing here runs
//! anything; [`crate::remote`] does.

pub mod boot;
pub mod command;
pub mod compose;
pub mod docker;
pub mod doctor;
pub mod nft;
pub mod nginx;
pub mod ports;
pub mod process;
pub mod routes;
pub mod state;

pub use command::{ServerCommand, Stdin};
