//! HTTP requests made on the server's behalf (health probes, verification through nginx):
//! the request and reply as values, so a fake host can answer them too.

use std::net::SocketAddr;
use std::time::Duration;

/// `GET http://{host}:{port}{path}` as seen from the server.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpGet {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// The `Host` header (nginx picks its server block by it).
    pub host_header: Option<String>,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    /// `X-Bluegreen-Color`, when the app or nginx sets it.
    pub color_header: Option<String>,
    /// At most [`MAX_BODY`] bytes of the body.
    pub body: String,
}

/// Bodies are only searched for a short marker; a huge one is cut, never buffered whole.
pub const MAX_BODY: usize = 64 * 1024;

/// A plain client: no redirects (a redirect is not health), no proxy from the environment
/// (the request goes through the SSH forward, never through `HTTP_PROXY`), no pooling.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

/// Sends `request` to `local` (a forwarded port); `Err` is a short reason for humans.
pub async fn get_via(local: SocketAddr, request: &HttpGet) -> Result<HttpReply, String> {
    let client = client(request.timeout);
    let mut builder = client.get(format!("http://{local}{}", request.path));
    if let Some(host) = &request.host_header {
        builder = builder.header("Host", host);
    }
    let mut response = builder.send().await.map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    let color_header = response
        .headers()
        .get("x-bluegreen-color")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(HttpReply {
        status,
        color_header,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection refused".into()
    } else {
        "connection closed".into()
    }
}
