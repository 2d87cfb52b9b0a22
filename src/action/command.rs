//! The `command` input: what one action step runs.

use crate::failure::Failure;
use crate::settings::Needs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionCommand {
    Ship,
    Deploy,
    Rollback,
    Status,
    Unlock,
    Plan,
    Doctor,
}

const ALL: [ActionCommand; 7] = [
    ActionCommand::Ship,
    ActionCommand::Deploy,
    ActionCommand::Rollback,
    ActionCommand::Status,
    ActionCommand::Unlock,
    ActionCommand::Plan,
    ActionCommand::Doctor,
];

impl ActionCommand {
    /// `INPUT_COMMAND`; empty or absent means `ship`.
    pub fn from_env() -> Result<ActionCommand, Failure> {
        Self::parse(&std::env::var("INPUT_COMMAND").unwrap_or_default())
    }

    pub fn parse(text: &str) -> Result<ActionCommand, Failure> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(ActionCommand::Ship);
        }
        ALL.into_iter()
            .find(|command| command.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
                Failure::config(format!(
                    "command: `{text}` is not one of {}; nothing on the server was touched; fix the `command` input",
                    names.join(", ")
                ))
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            ActionCommand::Ship => "ship",
            ActionCommand::Deploy => "deploy",
            ActionCommand::Rollback => "rollback",
            ActionCommand::Status => "status",
            ActionCommand::Unlock => "unlock",
            ActionCommand::Plan => "plan",
            ActionCommand::Doctor => "doctor",
        }
    }

    /// Whether it moves traffic to a newly deployed image (and so gets a GitHub Deployment).
    pub fn deploys(self) -> bool {
        matches!(self, ActionCommand::Ship | ActionCommand::Deploy)
    }

    /// Which settings it requires.
    pub fn needs(self) -> Needs {
        match self {
            ActionCommand::Ship | ActionCommand::Deploy | ActionCommand::Plan => Needs::Image,
            _ => Needs::AppOrImage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_by_its_name_and_empty_means_ship() {
        for command in ALL {
            assert_eq!(ActionCommand::parse(command.name()).unwrap(), command);
        }
        assert_eq!(ActionCommand::parse(" ").unwrap(), ActionCommand::Ship);
        let error = ActionCommand::parse("roll-back").unwrap_err();
        assert_eq!(error.code, 2);
        assert!(
            error
                .message
                .starts_with("command: `roll-back` is not one of ship, deploy, rollback"),
            "{}",
            error.message
        );
    }
}
