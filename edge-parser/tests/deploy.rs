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

/// Every YAML document of a file under `deploy/`.
fn deploy_yaml(relative: &str) -> Value {
    let path = deploy_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{} unreadable: {error}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The rules of a rules file, every group together.
fn rules(relative: &str) -> Vec<Value> {
    deploy_yaml(relative)["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules").clone())
        .collect()
}

/// The shipped rules files, each with its unit tests.
const RULES: [(&str, &str); 3] = [
    ("vantage-edge.rules.yml", "vantage-edge.test.yml"),
    ("vantage-service.rules.yml", "vantage-service.test.yml"),
    ("vantage-reconcile.rules.yml", "vantage-reconcile.test.yml"),
];

/// The edge's recording rules give exact rates, shares and percentiles per router (none from
/// native histograms over classic data), and each edge alert (burn rates, 5xx share, traffic
/// anomalies, the sidecars' health) fires with its exact labels and annotations where it
/// should and not where it should not (`deploy/prometheus/vantage-edge.test.yml`).
#[test]
fn the_edge_rules_fire_exactly_when_they_should() {
    promtool(&[
        "check",
        "rules",
        "vantage-settings.rules.yml",
        "vantage-edge.rules.yml",
    ]);
    promtool(&["test", "rules", "vantage-edge.test.yml"]);
}

/// The same for the services' rules: rates, 5xx shares and errors by `error_type` per route,
/// percentiles, in-flight requests; the 5xx share alert per route and the targets that cannot
/// be scraped (by Prometheus or by a sidecar) (`deploy/prometheus/vantage-service.test.yml`).
#[test]
fn the_service_rules_fire_exactly_when_they_should() {
    promtool(&["check", "rules", "vantage-service.rules.yml"]);
    promtool(&["test", "rules", "vantage-service.test.yml"]);
}

/// Every alert carries its context (a summary, a description, a dashboard link, a runbook,
/// a severity), and every alert is tested both firing (exact labels and annotations) and not
/// firing, so a new alert cannot ship without its tests.
#[test]
fn every_alert_has_context_and_is_tested_firing_and_silent() {
    let mut alerts = 0;
    for (rules_file, test_file) in RULES {
        let tests = deploy_yaml(&format!("prometheus/{test_file}"));
        let cases: Vec<&Value> = tests["tests"]
            .as_sequence()
            .expect("tests")
            .iter()
            .flat_map(|test| test["alert_rule_test"].as_sequence().into_iter().flatten())
            .collect();
        for rule in rules(&format!("prometheus/{rules_file}")) {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            for annotation in ["summary", "description", "dashboard", "runbook"] {
                assert!(
                    !text(&rule, &["annotations", annotation]).is_empty(),
                    "{name}: {annotation}"
                );
            }
            assert!(!text(&rule, &["labels", "severity"]).is_empty(), "{name}");
            let of_alert = || cases.iter().filter(|case| case["alertname"] == name);
            let firing = of_alert().find(|case| {
                case["exp_alerts"].as_sequence().is_some_and(|alerts| {
                    !alerts.is_empty()
                        && alerts.iter().all(|alert| {
                            ["summary", "description", "dashboard", "runbook"]
                                .iter()
                                .all(|a| alert["exp_annotations"][*a].is_string())
                        })
                })
            });
            assert!(
                firing.is_some(),
                "{name} is never tested firing with its annotations in {test_file}"
            );
            let silent = of_alert().find(|case| {
                case["exp_alerts"]
                    .as_sequence()
                    .is_some_and(|alerts| alerts.is_empty())
            });
            assert!(
                silent.is_some(),
                "{name} is never tested silent in {test_file}"
            );
        }
    }
    assert_eq!(alerts, 17);
}

/// Every `vantage:` setting the rules read (thresholds, objectives, the Grafana address) is
/// recorded once in vantage-settings.rules.yml, and every setting is read somewhere.
#[test]
fn the_settings_the_rules_read_are_defined_once_and_used() {
    let settings: Vec<String> = rules("prometheus/vantage-settings.rules.yml")
        .iter()
        .map(|rule| text(rule, &["record"]).to_owned())
        .collect();
    assert_eq!(
        settings,
        [
            "vantage:slo_availability:objective",
            "vantage:slo_latency:objective",
            "vantage:error_share:threshold",
            "vantage:error_share:min_rps",
            "vantage:edge_lag_seconds:threshold",
            "vantage:edge_malformed_share:threshold",
            "vantage:grafana:info",
        ]
    );
    let mut read = std::collections::BTreeSet::new();
    for (rules_file, _) in RULES {
        let source = std::fs::read_to_string(deploy_dir().join("prometheus").join(rules_file))
            .expect("rules readable");
        for (start, _) in source.match_indices("vantage:") {
            let name: String = source[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            assert!(
                settings.contains(&name),
                "{rules_file} reads {name}, which no setting records"
            );
            read.insert(name);
        }
    }
    assert_eq!(read.len(), settings.len(), "settings never read: {read:?}");
}
