//! Compose mode: the operator's compose file with `blue`/`green` services (seeds 002, 003),
//! driven through Debian's docker-compose v1 (the only compose on this machine).

use crate::support::{shared, Site};

#[test]
fn compose_mode_swaps_services_and_runs_exactly_the_deployed_image() {
    let mut site = Site::new("compose");
    let file = site.dir.join("docker-compose.yml");
    std::fs::write(
        &file,
        format!(
            "version: \"2.4\"\nservices:\n  blue:\n    image: ${{BLUEGREEN_IMAGE:-none}}\n    ports: [\"127.0.0.1:{}:8080\"]\n    \
             environment: {{BLUEGREEN_COLOR: blue}}\n    labels: {{bluegreen.app: {app}}}\n  green:\n    image: ${{BLUEGREEN_IMAGE:-none}}\n    \
             ports: [\"127.0.0.1:{}:8080\"]\n    environment: {{BLUEGREEN_COLOR: green}}\n    labels: {{bluegreen.app: {app}}}\n",
            site.blue_port,
            site.green_port,
            app = site.app
        ),
    )
    .unwrap();
    site.set("BLUEGREEN_COMPOSE_FILE", file.to_str().unwrap());
    site.set("BLUEGREEN_COMPOSE_PROJECT", &site.app.clone());
    site.deploy("v1").success();
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
    let second = site.deploy("v2");
    second.success();
    assert!(
        second.stderr.contains("docker-compose -f"),
        "{}",
        second.stderr
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    site.deploy("v3").success();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
    let status = site.status_json();
    assert_eq!(status["live_color"], "blue");
    assert!(
        status["live_image"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}@sha256:", shared().repo)),
        "{status}"
    );
    site.run(&["rollback"]).success();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
}
