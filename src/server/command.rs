//! A server command as a value: what to run, why, with what on stdin. Built by pure functions,
//! run by a [`crate::remote::Host`], rendered for `plan` and for error messages.

use crate::settings::Secret;

#[derive(Clone, Debug, PartialEq)]
pub enum Stdin {
    None,
    Text(String),
    Secret(Secret),
    /// A file's content (an uploaded release), shown by its size.
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerCommand {
    /// Lowercase phrase for logs and errors: "start green", "test nginx configuration".
    pub purpose: String,
    /// argv; `argv[0]` is the program. One element is one argument, never split by a shell.
    pub argv: Vec<String>,
    pub stdin: Stdin,
    /// Runs under `sudo -n` when the config says so (docker, nginx, the switch file).
    pub privileged: bool,
    /// For fixed scripts (`sh -c SCRIPT`), the script's name, shown instead of its text.
    pub script_name: Option<&'static str>,
}

impl ServerCommand {
    pub fn new(purpose: impl Into<String>, argv: &[&str]) -> Self {
        Self {
            purpose: purpose.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            stdin: Stdin::None,
            privileged: false,
            script_name: None,
        }
    }

    /// A fixed script shipped with the tool; values only ever arrive as positional arguments.
    pub fn script(purpose: impl Into<String>, script: &Script, args: &[&str]) -> Self {
        let mut argv = vec!["sh", "-c", script.text, script.name];
        argv.extend_from_slice(args);
        let mut command = Self::new(purpose, &argv);
        command.script_name = Some(script.name);
        command
    }

    /// An operator-given command string (nginx_reload_command): the one place a shell parses.
    pub fn operator_shell(purpose: impl Into<String>, command_line: &str) -> Self {
        Self::new(purpose, &["sh", "-c", command_line])
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// The argv actually executed on the server.
    pub fn final_argv(&self, sudo: bool) -> Vec<String> {
        let mut argv = Vec::with_capacity(self.argv.len() + 2);
        if sudo && self.privileged {
            argv.push("sudo".to_owned());
            argv.push("-n".to_owned());
        }
        argv.extend(self.argv.iter().cloned());
        argv
    }

    /// Shell-quoted rendering for humans (plan, errors); scripts appear by name.
    pub fn render(&self, sudo: bool) -> String {
        let argv = self.final_argv(sudo);
        let mut words = Vec::with_capacity(argv.len());
        let mut skip_script_text = false;
        for (index, arg) in argv.iter().enumerate() {
            if skip_script_text {
                skip_script_text = false;
                words.push(format!("<{}>", self.script_name.unwrap_or("script")));
                continue;
            }
            if self.script_name.is_some()
                && arg == "-c"
                && argv.get(index.wrapping_sub(1)).is_some_and(|p| p == "sh")
            {
                skip_script_text = true;
            }
            words.push(quote(arg));
        }
        let mut line = words.join(" ");
        match &self.stdin {
            Stdin::None => {}
            Stdin::Text(_) => line.push_str(" < (content)"),
            Stdin::Secret(_) => line.push_str(" < (secret on stdin)"),
            Stdin::Bytes(bytes) => line.push_str(&format!(" < ({} bytes)", bytes.len())),
        }
        line
    }
}

/// A fixed server-side script: a name for humans and its text.
pub struct Script {
    pub name: &'static str,
    pub text: &'static str,
}

/// POSIX single-quote a word when it needs it.
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_sudo_only_when_privileged() {
        let docker = ServerCommand::new("stop blue", &["docker", "stop", "app-blue"]).privileged();
        assert_eq!(docker.render(true), "sudo -n docker stop app-blue");
        assert_eq!(docker.render(false), "docker stop app-blue");
        let plain = ServerCommand::new("read", &["cat", "/x"]);
        assert_eq!(plain.render(true), "cat /x");
    }

    #[test]
    fn quotes_words_that_need_it() {
        let command = ServerCommand::new("x", &["echo", "a b", "it's", ""]);
        assert_eq!(command.render(false), r"echo 'a b' 'it'\''s' ''");
    }

    #[test]
    fn scripts_render_by_name_and_secrets_never() {
        const SCRIPT: Script = Script {
            name: "bluegreen-demo",
            text: "echo \"$1\"",
        };
        let command = ServerCommand::script("demo", &SCRIPT, &["v"])
            .stdin(Stdin::Secret(Secret::new("hunter2")));
        assert_eq!(
            command.render(false),
            "sh -c <bluegreen-demo> bluegreen-demo v < (secret on stdin)"
        );
    }
}
