//! The deploy kit and the operations doc (docs/operations.md) name the metrics ddcp exports,
//! and only those.

use std::path::Path;

use ddcp::metrics::ALL;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Every `ddcp_...` metric name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("ddcp_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

#[test]
fn the_operations_doc_documents_every_metric() {
    let doc = read("docs/operations.md");
    for name in ALL {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/operations.md lacks {name}"
        );
    }
}

#[test]
fn the_dashboard_and_alerts_use_only_metrics_that_exist() {
    let dashboard = read("deploy/grafana-dashboard.json");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(parsed["panels"].as_array().unwrap().len() >= ALL.len() - 3);
    let alerts = read("deploy/ddcp-alerts.yml");
    for text in [&dashboard, &alerts] {
        for name in metric_names(text) {
            // The dashboard's uid and tags mention ddcp_ only as metric names.
            assert!(ALL.contains(&name.as_str()), "{name} is not a ddcp metric");
        }
    }
    for name in ALL {
        assert!(
            dashboard.contains(name),
            "the dashboard shows nothing of {name}"
        );
    }
}

#[test]
fn the_service_and_compose_file_run_serve_with_metrics() {
    let unit = read("deploy/ddcp.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/ddcp serve --metrics-addr"));
    assert!(unit.contains("User=ddcp") && unit.contains("Restart=on-failure"));
    assert!(unit.contains("StateDirectory=ddcp"));
    let compose = read("deploy/docker-compose.yml");
    assert!(compose.contains(r#"command: ["serve", "--metrics-addr", "0.0.0.0:9100"]"#));
    let prometheus = read("deploy/prometheus.yml");
    assert!(prometheus.contains(r#"targets: ["ddcp:9100"]"#));
    // The many-database form: one serve of a folder.
    let host = read("deploy/ddcp-host.service");
    assert!(host.contains(
        "ExecStart=/usr/local/bin/ddcp serve --databases /var/lib/ddcp/databases --metrics-addr"
    ));
    assert!(compose.contains(r#"command: ["serve", "--databases", "/data/databases""#));
}

/// The image is built and run by scripts/test-container.sh, too slow for every run: here the
/// Dockerfile is checked for what the image must be (multi-stage on Debian bookworm, the
/// scripts' cr-sqlite build, one binary, uid 999, volume /data, the entrypoint that hands /data
/// to it), and every file it copies must exist.
#[test]
fn the_dockerfile_builds_from_what_the_repository_holds() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let from: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(
        from.iter().all(|line| line.contains("bookworm")),
        "{from:?}"
    );
    assert!(instructions.contains(&"RUN scripts/build-crsqlite.sh"));
    assert!(
        instructions
            .iter()
            .any(|l| l.contains("useradd --system --uid 999"))
    );
    assert!(instructions.contains(&"VOLUME /data"));
    assert!(instructions.contains(&r#"ENTRYPOINT ["ddcp-entrypoint"]"#));
    let entrypoint = read("deploy/entrypoint.sh");
    assert!(entrypoint.contains("exec setpriv --reuid=999 --regid=999"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut copied = Vec::new();
    for line in instructions
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(
                root.join(source).exists(),
                "{line}: {source} is not in the repository"
            );
            copied.push(source.trim_end_matches('/').to_string());
        }
    }
    // The build needs every workspace member: cargo refuses a workspace with one missing.
    let manifest = read("Cargo.toml");
    let members = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("members = "))
        .expect("Cargo.toml names its workspace members");
    for member in members.trim_matches(['[', ']']).split(',') {
        let member = member.trim().trim_matches('"');
        let top = member.split('/').next().unwrap();
        assert!(
            copied
                .iter()
                .any(|source| source == top || source == member),
            "the Dockerfile does not copy workspace member {member}"
        );
    }
    // Every RUN line continues properly: a trailing backslash never ends the file.
    assert!(!dockerfile.trim_end().ends_with('\\'));
}
