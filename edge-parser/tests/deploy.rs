//! The deployment files parse and wire the sidecar as the README says: a shared access-log
//! volume, a liveness probe on /health and no readiness probe (the sidecar never takes the
//! proxy out of its Service), resources, the snapshot token from an optional Secret,
//! Prometheus scrape annotations.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every YAML document of a file.
fn documents(name: &str) -> Vec<Value> {
    let path = deploy_dir().join("kubernetes").join(name);
    let text = std::fs::read_to_string(&path).expect("manifest readable");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .collect()
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |value, key| &value[*key])
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    get(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {value:?}"))
}

/// Checks an edge-parser container: its probes, its port, what it follows, its resources
/// and its token; `volumes` are the pod's.
fn check_edge_container(container: &Value, volumes: &Value) {
    assert_eq!(
        text(container, &["livenessProbe", "httpGet", "path"]),
        "/health"
    );
    assert!(
        container["readinessProbe"].is_null(),
        "a readiness probe on the sidecar can take the proxy out of its Service"
    );
    for resource in [
        ["requests", "cpu"],
        ["requests", "memory"],
        ["limits", "memory"],
    ] {
        let path = ["resources", resource[0], resource[1]];
        assert!(!text(container, &path).is_empty());
    }
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "serve");
    let log = args.iter().position(|a| *a == "--log").expect("--log");
    assert_eq!(args[log + 1], "/var/log/traefik/access.log");
    assert!(args.contains(&"--checkpoint"));
    let tokens = args
        .iter()
        .position(|a| *a == "--auth-token-file")
        .expect("--auth-token-file");
    assert_eq!(args[tokens + 1], "/etc/edge-parser/tokens/tokens");
    let secret = volumes
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "edge-tokens")
        .expect("the token volume");
    assert_eq!(
        text(secret, &["secret", "secretName"]),
        "edge-parser-tokens"
    );
    // A missing Secret must not keep the proxy's pod from starting.
    assert_eq!(secret["secret"]["optional"], true);
    let mounts = container["volumeMounts"].as_sequence().expect("mounts");
    assert!(mounts.iter().any(|m| m["name"] == "access-log"
        && m["mountPath"] == "/var/log/traefik"
        && m["readOnly"] == true));
    assert!(mounts.iter().any(|m| m["name"] == "edge-tokens"
        && m["mountPath"] == "/etc/edge-parser/tokens"
        && m["readOnly"] == true));
}

#[test]
fn the_plain_manifests_put_edge_parser_next_to_traefik() {
    let documents = documents("traefik-with-edge-parser.yaml");
    let kinds: Vec<&str> = documents.iter().map(|d| text(d, &["kind"])).collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Service"]);
    for document in &documents {
        assert!(!text(document, &["apiVersion"]).is_empty());
        assert!(!text(document, &["metadata", "name"]).is_empty());
    }
    let pod = get(&documents[1], &["spec", "template"]);
    assert_eq!(
        text(pod, &["metadata", "annotations", "prometheus.io/scrape"]),
        "true"
    );
    assert_eq!(
        text(pod, &["metadata", "annotations", "prometheus.io/port"]),
        "9898"
    );
    let containers = get(pod, &["spec", "containers"])
        .as_sequence()
        .expect("containers");
    let traefik = containers
        .iter()
        .find(|c| c["name"] == "traefik")
        .expect("traefik");
    let args: Vec<&str> = traefik["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--accesslog.filepath=/var/log/traefik/access.log"));
    assert!(args.contains(&"--accesslog.format=common"));
    check_edge_container(
        containers
            .iter()
            .find(|c| c["name"] == "edge-parser")
            .expect("sidecar"),
        get(pod, &["spec", "volumes"]),
    );
    let volumes = get(pod, &["spec", "volumes"])
        .as_sequence()
        .expect("volumes");
    let access_log = volumes
        .iter()
        .find(|v| v["name"] == "access-log")
        .expect("volume");
    assert!(access_log["emptyDir"].is_mapping());
}

#[test]
fn the_k3s_helm_chart_config_adds_the_sidecar_to_the_bundled_traefik() {
    let documents = documents("k3s-traefik-helmchartconfig.yaml");
    assert_eq!(documents.len(), 1);
    let config = &documents[0];
    assert_eq!(text(config, &["kind"]), "HelmChartConfig");
    assert_eq!(text(config, &["metadata", "namespace"]), "kube-system");
    let values: Value =
        serde_yaml_ng::from_str(text(config, &["spec", "valuesContent"])).expect("values YAML");
    assert_eq!(
        text(&values, &["logs", "access", "filePath"]),
        "/var/log/traefik/access.log"
    );
    assert_eq!(text(&values, &["logs", "access", "format"]), "common");
    assert_eq!(
        text(
            &values,
            &["deployment", "podAnnotations", "prometheus.io/scrape"]
        ),
        "true"
    );
    let sidecars = get(&values, &["deployment", "additionalContainers"])
        .as_sequence()
        .expect("sidecars");
    check_edge_container(
        &sidecars[0],
        get(&values, &["deployment", "additionalVolumes"]),
    );
}

#[test]
fn the_dockerfile_and_the_unit_run_serve() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("cargo build --release --locked -p vantage-edge --bin edge-parser")
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/edge-parser\"]"));
    assert!(dockerfile.contains("EXPOSE 9898"));
    let unit =
        std::fs::read_to_string(deploy_dir().join("systemd/edge-parser.service")).expect("unit");
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(exec.starts_with("/usr/local/bin/edge-parser serve --log "));
    assert!(unit.contains("KillSignal=SIGTERM"));
}

/// Runs `promtool ARGS` in the rules' directory; fails the test on a complaint, and under CI
/// when promtool cannot run (`.ci/run` installs the prometheus package).
fn promtool(args: &[&str]) {
    let output = match std::process::Command::new("promtool")
        .args(args)
        .current_dir(deploy_dir().join("prometheus"))
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool cannot run under CI ({error})"
            );
            eprintln!("skipping promtool {args:?}: {error}");
            return;
        }
    };
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The recording rules that join both sides in Prometheus are valid and give, on synthetic
/// series of two sidecars and two service instances, the exact requests lost per route and the
/// exact latency split (`deploy/prometheus/vantage-reconcile.test.yml`).
#[test]
fn the_reconcile_rules_give_the_exact_split() {
    promtool(&["check", "rules", "vantage-reconcile.rules.yml"]);
    promtool(&["test", "rules", "vantage-reconcile.test.yml"]);
}
