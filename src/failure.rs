//! Typed outcomes that choose the exit code (see INTERFACE.md): 1 deploy failed, 2 bad input,
//! 3 lock not acquired. Anything else that escapes is treated as 1.

use std::fmt;

use crate::color::Color;
use crate::engine::counts::Impact;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// What serves traffic now, when known ("blue still serves traffic").
    pub serving: Option<String>,
    /// The color that serves now, when that is known for sure.
    pub serving_color: Option<Color>,
    /// The new container's last log lines, when it failed to become healthy.
    pub logs: Vec<String>,
    /// What the probe requests through nginx got before the run failed, when it got that far
    /// (boxed: a `Failure` travels in every `Result`).
    pub impact: Option<Box<Impact>>,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            serving: None,
            serving_color: None,
            logs: Vec::new(),
            impact: None,
        }
    }
    pub fn deploy(message: impl Into<String>) -> Self {
        Self::new(1, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(2, message)
    }
    pub fn lock(message: impl Into<String>) -> Self {
        Self::new(3, message)
    }
    pub fn serving(mut self, serving: impl Into<String>) -> Self {
        self.serving = Some(serving.into());
        self
    }
    pub fn serving_color(mut self, color: Option<Color>) -> Self {
        self.serving_color = color;
        self
    }
    pub fn logs(mut self, logs: Vec<String>) -> Self {
        self.logs = logs;
        self
    }
    pub fn impact(mut self, impact: Option<Impact>) -> Self {
        self.impact = impact.map(Box::new);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code for any error that reached `main`.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(failure) = error.downcast_ref::<Failure>() {
        return failure.code;
    }
    if error
        .downcast_ref::<crate::settings::ConfigErrors>()
        .is_some()
    {
        return 2;
    }
    1
}
