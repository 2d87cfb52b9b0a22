//! `verify_url`: the URL requested on the server, through nginx, to prove which color serves.
//! Parsed with the `url` crate (IPv6 literals, ports, userinfo), then held as the three parts
//! the request needs.

use url::{Position, Url};

use super::values;

/// `http://host[:port][/path][?query]`; `host` keeps an IPv6 literal's brackets (`[::1]`), as
/// a `Host` header and a `host:port` socket address both write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyUrl {
    pub host: String,
    pub port: u16,
    /// The path and query, as sent in the request line (`/health?full=1`).
    pub path: String,
}

impl VerifyUrl {
    /// Every error quotes `text`; the caller names the setting.
    pub fn parse(text: &str) -> Result<Self, String> {
        let only_http =
            || format!("`{text}`: only http:// URLs are supported (fetched on the server)");
        // The prefix is checked as written: the URL standard would also read `http:host` or
        // `http:\\host` as http://host/.
        if !text
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
        {
            return Err(only_http());
        }
        let url = Url::parse(text).map_err(|error| match error {
            url::ParseError::EmptyHost => format!("`{text}` has no host"),
            url::ParseError::InvalidPort => format!("`{text}` has no valid port (1-65535)"),
            other => format!("`{text}` is not a valid URL: {other}"),
        })?;
        if url.scheme() != "http" {
            return Err(only_http());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "`{text}`: a user name or password in the URL is not supported"
            ));
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("`{text}` has no host"))?;
        let port = match url.port() {
            Some(port) => values::parse_port(&port.to_string())?,
            None => 80,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path: url[Position::BeforePath..Position::AfterQuery].to_owned(),
        })
    }

    pub fn render(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.path)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn parsed(text: &str) -> (String, u16, String) {
        let url = VerifyUrl::parse(text).unwrap();
        (url.host, url.port, url.path)
    }

    #[test]
    fn reads_host_port_and_path() {
        let part = |host: &str, port, path: &str| (host.to_owned(), port, path.to_owned());
        assert_eq!(
            parsed("http://127.0.0.1/health"),
            part("127.0.0.1", 80, "/health")
        );
        assert_eq!(
            parsed("http://localhost:8080"),
            part("localhost", 8080, "/")
        );
        assert_eq!(
            parsed("http://10.0.0.5:81/actuator/health?full=1#top"),
            part("10.0.0.5", 81, "/actuator/health?full=1")
        );
    }

    /// The hand-written split read `[::1]` as host `[:` and port `1]`, and refused it.
    #[test]
    fn accepts_an_ipv6_literal() {
        let url = VerifyUrl::parse("http://[::1]/health").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("[::1]", 80, "/health")
        );
        assert_eq!(url.render(), "http://[::1]:80/health");
        // The SSH forward connects to `host:port` read as a socket address.
        let remote: SocketAddr = format!("{}:{}", url.host, url.port).parse().unwrap();
        assert!(remote.ip().is_loopback() && remote.is_ipv6());
        let url = VerifyUrl::parse("http://[2001:db8::7]:8080/up").unwrap();
        assert_eq!(url.render(), "http://[2001:db8::7]:8080/up");
    }

    #[test]
    fn refusals_quote_the_value() {
        let refused = |text: &str| VerifyUrl::parse(text).unwrap_err();
        assert_eq!(
            refused("https://example.com/"),
            "`https://example.com/`: only http:// URLs are supported (fetched on the server)"
        );
        assert_eq!(
            refused("http:example.com/"),
            "`http:example.com/`: only http:// URLs are supported (fetched on the server)"
        );
        assert_eq!(refused("http://"), "`http://` has no host");
        assert_eq!(
            refused("http://:8080/health"),
            "`http://:8080/health` has no host"
        );
        assert_eq!(
            refused("http://h:70000/"),
            "`http://h:70000/` has no valid port (1-65535)"
        );
        assert_eq!(refused("http://h:0/"), "`0` is not a port (1-65535)");
        assert_eq!(
            refused("http://user:pw@h/"),
            "`http://user:pw@h/`: a user name or password in the URL is not supported"
        );
        assert!(refused("http://[::1/").starts_with("`http://[::1/` is not a valid URL: "));
    }
}
