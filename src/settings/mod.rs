//! Settings: one table of names, four sources, one typed and validated [`Config`].

pub mod config;
pub mod limits;
pub mod sources;
pub mod spec;
pub mod values;
pub mod verify_url;
pub(crate) mod yaml;

pub use config::{
    AppEnv, ComposeMode, Config, ConfigErrors, ContainerMode, HostKeyCheck, KeySource, Mode, Needs,
    ProcessMode, TrafficSwitch,
};
pub use sources::{RawSettings, Sources};
pub use values::Secret;
