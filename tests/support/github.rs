//! A local fake of the GitHub REST API (wiremock). The GitHub API cannot be reached from here;
//! this is the only faked component of the test suite.

use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub struct FakeGitHub {
    runtime: tokio::runtime::Runtime,
    pub server: MockServer,
}

impl FakeGitHub {
    /// Deployments and statuses succeed; run 1 is completed, run 2 is in progress; the compare
    /// endpoint answers `compare_status`.
    pub fn start(compare_status: &str) -> FakeGitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/repos/o/r/deployments"))
                .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 77})))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/repos/o/r/deployments/77/statuses"))
                .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path("/repos/o/r/actions/runs/1"))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"id": 1, "status": "completed"})),
                )
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path("/repos/o/r/actions/runs/2"))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"id": 2, "status": "in_progress"})),
                )
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path_regex(r"^/repos/o/r/compare/.+"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(json!({"status": compare_status})),
                )
                .mount(&server)
                .await;
            server
        });
        FakeGitHub { runtime, server }
    }

    /// An API that answers 500 to everything: the deploy must go on, with warnings.
    pub fn broken() -> FakeGitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(wiremock::matchers::any())
                .respond_with(
                    ResponseTemplate::new(500).set_body_json(json!({"message": "server error"})),
                )
                .mount(&server)
                .await;
            server
        });
        FakeGitHub { runtime, server }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// (method, path, body) of every request received, in order.
    pub fn requests(&self) -> Vec<(String, String, serde_json::Value)> {
        let requests = self
            .runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default();
        requests
            .into_iter()
            .map(|r| {
                (
                    r.method.to_string(),
                    r.url.path().to_owned(),
                    serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect()
    }
}
