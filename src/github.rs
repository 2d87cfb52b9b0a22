//! The GitHub API, through octocrab (`GITHUB_API_URL`): Deployments and their statuses, the
//! state of a workflow run (for the run-aware lock), and commit order (no silent downgrades).
//! Every call is best effort for the deploy: callers warn on errors, never fail on them.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use octocrab::Octocrab;
use serde_json::{json, Value};

use crate::redact::Redactor;
use crate::settings::Secret;

/// One status of a Deployment, as the API takes it.
pub struct DeploymentStatus<'a> {
    pub state: &'a str,
    pub log_url: Option<&'a str>,
    pub description: &'a str,
    /// Where the deployed app can be opened (shown on the pull request and environment).
    pub environment_url: Option<&'a str>,
}

pub struct GitHub {
    client: Octocrab,
    repository: String,
    /// Everything we send is redacted first: a status description can quote a failed build.
    redactor: Redactor,
}

impl GitHub {
    /// `None` without a token or outside a repository's workflow (no GITHUB_REPOSITORY).
    pub fn from_env(token: Option<&Secret>, redactor: Redactor) -> Result<Option<GitHub>> {
        let (Some(token), Ok(repository)) = (token, std::env::var("GITHUB_REPOSITORY")) else {
            return Ok(None);
        };
        let api =
            std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
        let client = Octocrab::builder()
            .base_uri(api.as_str())
            .context("GITHUB_API_URL is not a URL")?
            .personal_token(token.expose().to_owned())
            .build()
            .context("creating the GitHub client")?;
        Ok(Some(GitHub {
            client,
            repository,
            redactor,
        }))
    }

    pub async fn create_deployment(
        &self,
        sha: &str,
        environment: &str,
        production: bool,
    ) -> Result<u64> {
        let body = json!({
            "ref": sha,
            "environment": environment,
            "auto_merge": false,
            "required_contexts": [],
            "description": "bluegreen deploy",
            "transient_environment": false,
            "production_environment": production,
        });
        let created: Value = bounded(self.client.post(
            format!("/repos/{}/deployments", self.repository),
            Some(&body),
        ))
        .await
        .context("creating the GitHub deployment")?;
        created["id"]
            .as_u64()
            .context("the deployment response has no id")
    }

    pub async fn set_status(&self, id: u64, status: &DeploymentStatus<'_>) -> Result<()> {
        let state = status.state;
        let description = self.redactor.untrusted(status.description);
        let mut body = json!({ "state": state, "description": truncate(&description, 140) });
        if let Some(url) = status.log_url {
            body["log_url"] = json!(url);
        }
        if let Some(url) = status.environment_url {
            body["environment_url"] = json!(url);
        }
        let _: Value = bounded(self.client.post(
            format!("/repos/{}/deployments/{id}/statuses", self.repository),
            Some(&body),
        ))
        .await
        .with_context(|| format!("setting the deployment status to {state}"))?;
        Ok(())
    }

    /// Whether the workflow run behind `run_url` (…/owner/repo/actions/runs/ID) has completed.
    pub async fn run_completed(&self, run_url: &str) -> Result<bool> {
        let (repository, id) = parse_run_url(run_url).context("not a workflow run URL")?;
        let run: Value = bounded(self.client.get(
            format!("/repos/{repository}/actions/runs/{id}"),
            None::<&()>,
        ))
        .await
        .context("reading the lock holder's workflow run")?;
        Ok(run["status"].as_str() == Some("completed"))
    }

    /// GitHub's comparison of `base...head`: `ahead`, `behind`, `identical` or `diverged`.
    pub async fn compare(&self, base: &str, head: &str) -> Result<String> {
        let comparison: Value = bounded(self.client.get(
            format!("/repos/{}/compare/{base}...{head}", self.repository),
            None::<&()>,
        ))
        .await
        .context("comparing commits")?;
        comparison["status"]
            .as_str()
            .map(str::to_owned)
            .context("the comparison has no status")
    }
}

/// A call the API does not answer may not hold up a deploy (the client sets no timeout of its
/// own): each call gives up after this long, and its caller warns as for any API error.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

async fn bounded<T>(call: impl Future<Output = octocrab::Result<T>>) -> Result<T> {
    within(CALL_TIMEOUT, call).await
}

async fn within<T>(limit: Duration, call: impl Future<Output = octocrab::Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => Ok(answer?),
        Err(_) => anyhow::bail!(
            "the GitHub API did not answer within {}s",
            limit.as_secs_f64()
        ),
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The URL of the current workflow run, from the runner's GITHUB_* variables.
pub fn run_url_from_env() -> Option<String> {
    match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        (Ok(server), Ok(repo), Ok(run)) => Some(format!("{server}/{repo}/actions/runs/{run}")),
        _ => None,
    }
}

/// `https://github.com/o/r/actions/runs/42` → (`o/r`, 42).
pub fn parse_run_url(url: &str) -> Option<(String, u64)> {
    let (before, id) = url.trim_end_matches('/').rsplit_once("/actions/runs/")?;
    let id = id.split('/').next()?.parse().ok()?;
    let mut segments = before.rsplit('/');
    let repo = segments.next()?;
    let owner = segments.next()?;
    Some((format!("{owner}/{repo}"), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_the_api_never_answers_gives_up() {
        let never = std::future::pending::<octocrab::Result<Value>>();
        let error = within(Duration::from_millis(50), never).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the GitHub API did not answer within 0.05s"
        );
    }

    #[test]
    fn parses_run_urls() {
        assert_eq!(
            parse_run_url("https://github.com/o/r/actions/runs/42"),
            Some(("o/r".into(), 42))
        );
        assert_eq!(
            parse_run_url("http://127.0.0.1:9/o/r/actions/runs/7/attempts/2"),
            Some(("o/r".into(), 7))
        );
        assert_eq!(parse_run_url("https://github.com/o/r"), None);
    }
}
