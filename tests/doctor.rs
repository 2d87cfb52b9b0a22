//! `bluegreen doctor` against the real sandbox server: what it sees, and each problem it must
//! name with its fix (a foreign process on a color port, a switch file nginx does not include,
//! a container that mounts the switch file as a single file).

use std::process::Command;

use crate::support::{sh, shared, Site};

fn line_starting<'a>(stdout: &'a str, start: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting `{start}` in:\n{stdout}"))
}

#[test]
fn doctor_reads_the_server_and_names_each_problem_with_its_fix() {
    let mut site = Site::new("doctor");
    let fresh = site.run(&["doctor"]);
    fresh.success();
    line_starting(&fresh.stdout, "✓ SSH login as root@127.0.0.1");
    line_starting(&fresh.stdout, "✓ Docker Engine ");
    line_starting(&fresh.stdout, "✓ nginx includes ");
    line_starting(&fresh.stdout, "✓ proxy_pass uses $service_url");
    line_starting(
        &fresh.stdout,
        &format!("✓ blue port {} is free", site.blue_port),
    );
    line_starting(&fresh.stdout, "✓ nginx 1.");
    assert!(
        !fresh.stdout.contains('✗'),
        "a fresh sandbox has no problem:\n{}",
        fresh.stdout
    );

    site.deploy("v1").success();
    let deployed = site.run(&["doctor"]);
    deployed.success();
    line_starting(
        &deployed.stdout,
        &format!(
            "✓ nginx includes the switch file {}",
            site.switch_file.display()
        ),
    );
    assert!(
        line_starting(
            &deployed.stdout,
            &format!("✓ blue port {}:", site.blue_port)
        )
        .ends_with("started by bluegreen"),
        "{}",
        deployed.stdout
    );

    // Problems: a process of ours on green's port, and a container mounting the switch file.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", site.green_port)).unwrap();
    let mounter = format!("{}-mounter", site.app);
    sh(Command::new("docker").args([
        "run",
        "--detach",
        "--name",
        &mounter,
        "--volume",
        &format!("{}:/etc/nginx/conf.d/app.inc", site.switch_file.display()),
        &shared().image("v1"),
    ]));
    let troubled = site.run(&["doctor"]);
    let _cleanup = Command::new("docker").args(["rm", "-f", &mounter]).output();
    drop(squatter);
    troubled.code(1);
    let port_line = line_starting(
        &troubled.stdout,
        &format!("✗ green port {}", site.green_port),
    );
    assert!(
        port_line.contains(&format!("(pid {})", std::process::id()))
            && port_line.contains(&format!("`kill {}`", std::process::id())),
        "{port_line}"
    );
    let mount_line = line_starting(&troubled.stdout, &format!("✗ container {mounter} mounts"));
    assert!(mount_line.contains("mount the directory"), "{mount_line}");
    assert!(
        troubled.last_line().contains("doctor found 2 problems"),
        "{}",
        troubled.last_line()
    );

    // A switch file nginx does not include.
    let elsewhere = site.dir.join("elsewhere.conf");
    std::fs::write(&elsewhere, "").unwrap();
    site.set("BLUEGREEN_NGINX_SWITCH_FILE", elsewhere.to_str().unwrap());
    let excluded = site.run(&["doctor"]);
    excluded.code(1);
    let include_line = line_starting(&excluded.stdout, "✗ nginx does not include");
    assert!(
        include_line.contains(&format!("add `include {};`", elsewhere.display())),
        "{include_line}"
    );
    // doctor changed nothing: the site still serves v1 from blue.
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}

/// `init` writes a settings file the tool then reads (here with the sandbox's settings given
/// in the environment, as CI secrets would be), and never overwrites one.
#[test]
fn init_writes_a_settings_file_that_doctor_reads() {
    let site = Site::new("init");
    let project = site.dir.join("shop-api");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("pom.xml"), "<project/>").unwrap();
    let run = |args: &[&str]| {
        let mut command = site.bluegreen(args);
        command.current_dir(&project);
        crate::support::Run::from(command.output().unwrap())
    };
    let init = run(&["init"]);
    init.success();
    assert!(
        init.stdout.contains("found pom.xml but no ./mvnw"),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout.contains("include /etc/nginx/conf.d/*.inc;"),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout.contains("No Dockerfile here"),
        "{}",
        init.stdout
    );
    let written = std::fs::read_to_string(project.join("bluegreen.yml")).unwrap();
    assert!(written.contains("image: REPLACE-ME/shop-api"), "{written}");
    assert!(written.contains("build_command: auto"), "{written}");
    run(&["doctor"]).success();
    let again = run(&["init"]);
    again.code(2);
    assert!(
        again.last_line().contains("already exists"),
        "{}",
        again.last_line()
    );
    assert_eq!(
        std::fs::read_to_string(project.join("bluegreen.yml")).unwrap(),
        written
    );
}
