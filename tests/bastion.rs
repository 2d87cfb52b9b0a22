//! `proxy_jump`: the connection goes through a bastion (a second, real sshd), whose host key
//! is checked like the server's.

use crate::support::{PrivateSshd, Site};

#[test]
fn a_deploy_goes_through_the_bastion_and_checks_its_host_key() {
    let mut site = Site::new("bastion");
    let bastion = PrivateSshd::start("bastion");
    let log = crate::support::shared().dir.join("bastion.log");
    let logins = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    };
    let server_known_hosts = site.setting("BLUEGREEN_KNOWN_HOSTS");
    site.set(
        "BLUEGREEN_PROXY_JUMP",
        &format!("root@127.0.0.1:{}", bastion.port),
    );
    // The bastion's key is not known yet: refused, nothing done.
    let unknown = site.deploy("v1");
    unknown.code(2);
    assert!(
        unknown.last_line().contains("through the bastion")
            && unknown.last_line().contains("ssh-keyscan"),
        "{}",
        unknown.last_line()
    );
    assert_eq!(site.container_state("blue"), None);
    assert_eq!(
        logins(),
        0,
        "the bastion was logged in to without its host key"
    );

    site.set(
        "BLUEGREEN_KNOWN_HOSTS",
        &format!("{server_known_hosts}{}", bastion.known_hosts),
    );
    site.deploy("v1").success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    assert_eq!(logins(), 1, "the deploy did not log in to the bastion");
}
