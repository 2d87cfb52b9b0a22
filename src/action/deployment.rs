//! The GitHub Deployment of an action run: created `in_progress` before the deploy, finished
//! with the run's result; after a rollback, a new one for the restored commit. Best effort: an
//! API failure is a warning, never the deploy's failure.

use std::net::IpAddr;

use super::report::{Report, RunResult};
use super::Runner;
use crate::github::GitHub;
use crate::printer::Printer;
use crate::settings::Config;

pub struct Deployment<'a> {
    github: &'a GitHub,
    id: u64,
}

impl<'a> Deployment<'a> {
    pub async fn start(
        github: &'a GitHub,
        config: &Config,
        commit: &str,
        runner: &Runner,
        printer: &Printer,
    ) -> Option<Deployment<'a>> {
        let production = is_production(&config.environment);
        let created = async {
            let id = github
                .create_deployment(commit, &config.environment, production)
                .await?;
            let status = crate::github::DeploymentStatus {
                state: "in_progress",
                log_url: runner.run_url.as_deref(),
                description: "bluegreen deploy in progress",
                environment_url: None,
            };
            github.set_status(id, &status).await?;
            anyhow::Ok(id)
        }
        .await;
        match created {
            Ok(id) => {
                printer.info(&format!(
                    "GitHub deployment {id} for {} is in progress",
                    config.environment
                ));
                Some(Deployment { github, id })
            }
            Err(error) => {
                printer.warn(&format!("{error:#}; deploying without a GitHub deployment"));
                None
            }
        }
    }

    /// The final status: a cancelled run is an `error` (it did not fail on its merits).
    pub async fn finish(&self, config: &Config, report: &Report, printer: &Printer) {
        let url = public_url(&config.verify_url.render());
        let (state, description) = match report.result {
            RunResult::Success | RunResult::Unchanged => (
                "success",
                format!(
                    "{} serves {}",
                    report.new.map_or("-".into(), |c| c.to_string()),
                    report.image.as_deref().unwrap_or("")
                ),
            ),
            RunResult::Cancelled => ("error", "cancelled".to_owned()),
            RunResult::Failure => ("failure", report.failure.clone().unwrap_or_default()),
        };
        let status = crate::github::DeploymentStatus {
            state,
            log_url: report.run_url.as_deref(),
            description: &description,
            environment_url: url.as_deref().filter(|_| state == "success"),
        };
        if let Err(error) = self.github.set_status(self.id, &status).await {
            printer.warn(&format!("{error:#}; the deploy itself is not affected"));
        }
    }
}

/// After a rollback: a new Deployment of the restored commit, `success` at once, so GitHub
/// shows what serves now (a success status marks the environment's earlier deployments
/// inactive, the rolled-back-from one included). Best effort, as every call here.
pub async fn record_rollback(github: &GitHub, config: &Config, report: &Report, printer: &Printer) {
    let image = report.image.as_deref().unwrap_or("the restored image");
    if report.commit.is_empty() {
        printer.warn(&format!(
            "the GitHub deployment was not updated: the commit of {image} is not recorded (it was \
             deployed before bluegreen recorded commits); GitHub shows the rolled-back-from \
             version as live until the next deploy"
        ));
        return;
    }
    let description = format!(
        "rolled back: {} serves {image}",
        report.new.map_or("-".into(), |c| c.to_string())
    );
    let url = public_url(&config.verify_url.render());
    let created = async {
        let id = github
            .create_deployment(
                &report.commit,
                &config.environment,
                is_production(&config.environment),
            )
            .await?;
        let status = crate::github::DeploymentStatus {
            state: "success",
            log_url: report.run_url.as_deref(),
            description: &description,
            environment_url: url.as_deref(),
        };
        github.set_status(id, &status).await?;
        anyhow::Ok(id)
    }
    .await;
    match created {
        Ok(id) => printer.info(&format!(
            "GitHub deployment {id} records the rollback to {} in {}",
            &report.commit[..report.commit.len().min(7)],
            config.environment
        )),
        Err(error) => printer.warn(&format!(
            "{error:#}; the GitHub deployment still shows the rolled-back-from version; the \
             rollback itself is not affected"
        )),
    }
}

/// GitHub marks these environments as production.
fn is_production(environment: &str) -> bool {
    matches!(environment, "prod" | "production")
}

/// `url` when a browser elsewhere could open it: a host name or a public address, not
/// loopback, private or link-local. The port is dropped when it is 80.
pub fn public_url(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "80"));
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let public = match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            !(ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified())
        }
        Ok(IpAddr::V6(ip)) => !(ip.is_loopback() || ip.is_unspecified()),
        Err(_) => bare.contains('.') && !bare.ends_with(".local") && bare != "localhost",
    };
    if !public {
        return None;
    }
    Some(match port {
        "80" => format!("http://{host}{path}"),
        _ => format!("http://{host}:{port}{path}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_urls_become_the_environment_url() {
        assert_eq!(public_url("http://127.0.0.1:80/actuator/health"), None);
        assert_eq!(public_url("http://10.0.0.5:80/health"), None);
        assert_eq!(public_url("http://localhost:8080/"), None);
        assert_eq!(
            public_url("http://api.example.com:80/actuator/health").as_deref(),
            Some("http://api.example.com/actuator/health")
        );
        assert_eq!(
            public_url("http://3.120.1.9:8080/").as_deref(),
            Some("http://3.120.1.9:8080/")
        );
        assert!(is_production("prod") && !is_production("dev"));
    }
}
