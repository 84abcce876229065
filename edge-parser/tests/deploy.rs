//! The deployment files parse and wire the sidecar as the README says: a shared access-log
//! volume, a liveness probe on /health and no readiness probe (the sidecar never takes the
//! proxy out of its Service), resources, the snapshot token from an optional Secret,
//! Prometheus scrape annotations. The Prometheus rules give exact answers and every alert
//! fires exactly when it should (`promtool test rules`); the Grafana dashboards have what
//! Grafana requires and valid PromQL ([`dashboard_exprs`] lists it for end-to-end tests); the
//! Kubernetes monitoring objects scrape every sidecar, proxy and service and load the rules.

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

/// The shipped Grafana dashboards, by file name.
const DASHBOARDS: [&str; 3] = [
    "vantage-service.json",
    "vantage-edge.json",
    "vantage-edge-vs-service.json",
];

/// The data source reference every panel, target and query variable uses: the `datasource`
/// variable, never a data source's own uid.
const DATASOURCE_REF: &str = "${datasource}";

fn dashboard(name: &str) -> serde_json::Value {
    let path = deploy_dir().join("grafana").join(name);
    let text = std::fs::read_to_string(&path).expect("dashboard readable");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// One PromQL expression of a shipped dashboard, where it is.
#[derive(Debug)]
pub(crate) struct DashboardExpr {
    /// The dashboard's file name.
    pub(crate) dashboard: &'static str,
    /// The panel's title.
    pub(crate) panel: String,
    /// The target's `refId`.
    pub(crate) ref_id: String,
    /// The expression as the dashboard has it, Grafana variables included.
    pub(crate) expr: String,
}

/// Every PromQL expression of every shipped dashboard (panel targets and annotation queries),
/// for tests that check them or evaluate them against a real Prometheus (after
/// [`concrete_expr`]). Expressions from native histograms (`rate(<name>_seconds{...})` of a
/// histogram without a suffix) return data only where Prometheus ingests native histograms.
pub(crate) fn dashboard_exprs() -> Vec<DashboardExpr> {
    let mut exprs = Vec::new();
    for name in DASHBOARDS {
        let board = dashboard(name);
        for panel in board["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                exprs.push(DashboardExpr {
                    dashboard: name,
                    panel: panel["title"].as_str().expect("title").to_owned(),
                    ref_id: target["refId"].as_str().expect("refId").to_owned(),
                    expr: target["expr"].as_str().expect("expr").to_owned(),
                });
            }
        }
        for annotation in board["annotations"]["list"]
            .as_array()
            .expect("annotations")
        {
            if let Some(expr) = annotation["expr"].as_str() {
                exprs.push(DashboardExpr {
                    dashboard: name,
                    panel: annotation["name"].as_str().expect("name").to_owned(),
                    ref_id: "annotation".to_owned(),
                    expr: expr.to_owned(),
                });
            }
        }
    }
    exprs
}

/// Grafana's variables of the dashboards as a query would run them: intervals of 5 minutes,
/// every value of a multi-value variable.
const VARIABLES: [(&str, &str); 7] = [
    ("__rate_interval", "5m"),
    ("__interval", "1m"),
    ("__range", "1h"),
    ("route", ".*"),
    ("router", ".*"),
    ("job", ".*"),
    ("instance", ".*"),
];

/// An expression with its Grafana variables (`$name` or `${name}`, whole names only: `$router`
/// is not `$route` followed by `r`) replaced as [`VARIABLES`] says: plain PromQL. An unknown
/// variable is left as it is.
pub(crate) fn concrete_expr(expr: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match VARIABLES.iter().find(|(variable, _)| *variable == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[at..at + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[test]
fn concrete_expressions_replace_whole_variable_names() {
    assert_eq!(
        concrete_expr(r#"rate(x{router=~"$router", http_route=~"${route}"}[$__rate_interval])"#),
        r#"rate(x{router=~".*", http_route=~".*"}[5m])"#
    );
    assert_eq!(concrete_expr("$unknown + $"), "$unknown + $");
}

/// Every object under `value` with a `datasource` key, with where it is.
fn datasource_refs<'a>(
    value: &'a serde_json::Value,
    at: &str,
    found: &mut Vec<(String, &'a serde_json::Value)>,
) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(datasource) = map.get("datasource") {
                found.push((at.to_owned(), datasource));
            }
            for (key, inner) in map {
                datasource_refs(inner, &format!("{at}.{key}"), found);
            }
        }
        serde_json::Value::Array(items) => {
            for (n, inner) in items.iter().enumerate() {
                datasource_refs(inner, &format!("{at}[{n}]"), found);
            }
        }
        _ => {}
    }
}

/// Each dashboard has what Grafana needs to import it: a title and a uid, a schema version,
/// the `__inputs`/`__requires` of an export, a `datasource` variable of type prometheus that
/// every panel, target and query variable refers to (no data source uid written in), panels
/// with unique ids and a grid position inside the 24 columns, and targets with an expression
/// and a unique refId per panel. Every variable an expression uses is defined.
#[test]
fn the_dashboards_have_what_grafana_requires() {
    let mut uids = Vec::new();
    for name in DASHBOARDS {
        let board = dashboard(name);
        let title = board["title"].as_str().expect("title");
        assert!(title.starts_with("Vantage / "), "{name}: {title}");
        let uid = board["uid"].as_str().expect("uid");
        assert_eq!(format!("{uid}.json"), name);
        uids.push(uid.to_owned());
        assert!(
            board["id"].is_null(),
            "{name}: an id is the Grafana instance's"
        );
        assert_eq!(board["schemaVersion"], 39, "{name}");
        assert_eq!(board["__inputs"][0]["pluginId"], "prometheus", "{name}");
        assert_eq!(board["__inputs"][0]["type"], "datasource", "{name}");
        let requires = board["__requires"].as_array().expect("__requires");
        assert!(requires.iter().any(|r| r["id"] == "prometheus"), "{name}");

        let variables = board["templating"]["list"].as_array().expect("templating");
        let datasource = variables
            .iter()
            .find(|v| v["name"] == "datasource")
            .expect("a datasource variable");
        assert_eq!(datasource["type"], "datasource");
        assert_eq!(datasource["query"], "prometheus");
        let variable_names: Vec<&str> = variables
            .iter()
            .map(|v| v["name"].as_str().expect("variable name"))
            .collect();

        let mut refs = Vec::new();
        datasource_refs(&board, name, &mut refs);
        for (at, reference) in &refs {
            if reference["type"] == "grafana" {
                // The built-in annotations of Grafana itself.
                assert_eq!(reference["uid"], "-- Grafana --", "{at}");
                continue;
            }
            assert_eq!(reference["type"], "prometheus", "{at}");
            assert_eq!(reference["uid"], DATASOURCE_REF, "{at}");
        }

        let panels = board["panels"].as_array().expect("panels");
        let mut ids: Vec<u64> = panels
            .iter()
            .map(|p| p["id"].as_u64().expect("id"))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), panels.len(), "{name}: panel ids are not unique");
        let mut targets = 0;
        for panel in panels {
            let title = panel["title"].as_str().expect("panel title");
            assert!(!title.is_empty());
            let grid = &panel["gridPos"];
            let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| {
                grid[k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{name} {title}: gridPos.{k}"))
            });
            assert!(h > 0 && w > 0 && x + w <= 24, "{name} {title}: {grid}");
            let _ = y;
            if panel["type"] == "row" {
                assert!(panel["targets"].is_null(), "{name} {title}");
                continue;
            }
            assert_eq!(panel["datasource"]["uid"], DATASOURCE_REF, "{name} {title}");
            let panel_targets = panel["targets"].as_array().expect("targets");
            assert!(!panel_targets.is_empty(), "{name} {title}: no target");
            let mut ref_ids: Vec<&str> = panel_targets
                .iter()
                .map(|t| t["refId"].as_str().expect("refId"))
                .collect();
            ref_ids.sort_unstable();
            ref_ids.dedup();
            assert_eq!(ref_ids.len(), panel_targets.len(), "{name} {title}");
            for target in panel_targets {
                let expr = target["expr"].as_str().expect("expr");
                assert!(!expr.trim().is_empty(), "{name} {title}");
                targets += 1;
                for (start, _) in expr.match_indices('$') {
                    let variable: String = expr[start + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        variable.starts_with("__") || variable_names.contains(&variable.as_str()),
                        "{name} {title}: ${variable} is not a variable of the dashboard"
                    );
                }
            }
        }
        assert!(targets >= 10, "{name}: {targets} targets");
    }
    assert_eq!(
        uids,
        ["vantage-service", "vantage-edge", "vantage-edge-vs-service"]
    );
}

/// Every PromQL expression of every dashboard parses: written, with its Grafana variables
/// replaced, as a recording rule into a rules file that `promtool check rules` accepts.
#[test]
fn every_dashboard_expression_is_valid_promql() {
    let exprs = dashboard_exprs();
    // Targets: 12 of the service, 22 of the edge, 12 of edge-vs-service; one alert
    // annotation query per dashboard.
    assert_eq!(exprs.len(), 49);
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (n, expr) in exprs.iter().enumerate() {
        let concrete = concrete_expr(&expr.expr);
        assert!(
            !concrete.contains('$'),
            "{} {} {}: {concrete}",
            expr.dashboard,
            expr.panel,
            expr.ref_id
        );
        // A YAML block scalar keeps the expression as it is, quotes and braces included.
        rules.push_str(&format!(
            "      - record: dashboard_expr_{n}\n        expr: |\n          {concrete}\n"
        ));
    }
    let dir = crate::util::Dir::new("dashboard_exprs");
    let path = dir.create("dashboards.rules.yml", rules);
    promtool(&["check", "rules", path.to_str().expect("UTF-8 path")]);
}

/// Every recorded series a dashboard reads (`level:metric:operations`) is recorded by a shipped
/// rules file: a misspelt name would parse and show an empty panel.
#[test]
fn the_recorded_series_the_dashboards_read_are_recorded() {
    let recorded: Vec<String> = [
        "vantage-settings.rules.yml",
        "vantage-edge.rules.yml",
        "vantage-service.rules.yml",
        "vantage-reconcile.rules.yml",
    ]
    .iter()
    .flat_map(|file| rules(&format!("prometheus/{file}")))
    .filter_map(|rule| rule["record"].as_str().map(str::to_owned))
    .collect();
    let mut read = std::collections::BTreeSet::new();
    for expr in dashboard_exprs() {
        let names = expr
            .expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|token| token.contains(':'));
        for name in names {
            assert!(
                recorded.iter().any(|r| r == name),
                "{} {}: {name} is recorded by no rule",
                expr.dashboard,
                expr.panel
            );
            read.insert(name.to_owned());
        }
    }
    assert_eq!(read.len(), 16, "{read:?}");
}

/// The shape of the check above can fail: an expression that does not parse is refused.
#[test]
fn promtool_refuses_an_expression_that_does_not_parse() {
    let dir = crate::util::Dir::new("dashboard_exprs_refused");
    let path = dir.create(
        "bad.rules.yml",
        "groups:\n  - name: bad\n    rules:\n      - record: bad\n        expr: |\n          sum by (router (rate(edge_requests_total[5m]))\n",
    );
    let refused = std::panic::catch_unwind(|| {
        promtool(&["check", "rules", path.to_str().expect("UTF-8 path")]);
    });
    if std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok()
    {
        assert!(refused.is_err(), "promtool accepted a broken expression");
    }
}

/// The `vantage_role` a scrape configuration gives its targets through relabelling.
fn roles_set_by(relabelings: &Value) -> Vec<&str> {
    relabelings
        .as_sequence()
        .expect("relabelings")
        .iter()
        .filter(|r| r["targetLabel"] == "vantage_role" || r["target_label"] == "vantage_role")
        .filter_map(|r| r["replacement"].as_str())
        .collect()
}

/// The `vantage_role` values the shipped rules select targets by.
fn roles_read_by_rules() -> std::collections::BTreeSet<String> {
    let mut roles = std::collections::BTreeSet::new();
    for (rules_file, _) in RULES {
        let source = std::fs::read_to_string(deploy_dir().join("prometheus").join(rules_file))
            .expect("rules readable");
        for (start, matched) in source.match_indices("vantage_role=\"") {
            let rest = &source[start + matched.len()..];
            roles.insert(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
    }
    roles
}

/// With the Prometheus Operator: the PodMonitor selects the Traefik pods of both manifests
/// and scrapes, on ports those pods name, the sidecar (`vantage_role="edge"`) and Traefik's
/// own metrics (`proxy`, for the stale alert); the ServiceMonitor selects the instrumented
/// Services (`service`) on a port they name. The roles are those the rules read.
#[test]
fn the_prometheus_operator_scrapes_every_sidecar_proxy_and_service() {
    let monitors = documents("prometheus-operator.yaml");
    let kinds: Vec<&str> = monitors.iter().map(|d| text(d, &["kind"])).collect();
    assert_eq!(kinds, ["PodMonitor", "ServiceMonitor", "Service"]);
    let (pod_monitor, service_monitor, service) = (&monitors[0], &monitors[1], &monitors[2]);
    for monitor in [pod_monitor, service_monitor] {
        assert_eq!(text(monitor, &["apiVersion"]), "monitoring.coreos.com/v1");
        assert_eq!(
            text(monitor, &["metadata", "labels", "release"]),
            "prometheus"
        );
    }

    let plain = documents("traefik-with-edge-parser.yaml");
    let deployment = &plain[1];
    let pod = get(deployment, &["spec", "template"]);
    let selector = get(pod_monitor, &["spec", "selector", "matchLabels"])
        .as_mapping()
        .expect("matchLabels");
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&pod["metadata"]["labels"][key], value, "{key:?}");
    }
    let namespaces = get(pod_monitor, &["spec", "namespaceSelector", "matchNames"]);
    for namespace in [text(deployment, &["metadata", "namespace"]), "kube-system"] {
        assert!(
            namespaces
                .as_sequence()
                .expect("matchNames")
                .iter()
                .any(|n| n == namespace),
            "{namespace}"
        );
    }
    let container_ports = |container: &str| -> Vec<String> {
        get(pod, &["spec", "containers"])
            .as_sequence()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == container)
            .expect("container")["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .map(|p| text(p, &["name"]).to_owned())
            .collect()
    };
    let endpoints = get(pod_monitor, &["spec", "podMetricsEndpoints"])
        .as_sequence()
        .expect("podMetricsEndpoints");
    let scraped: Vec<(&str, Vec<&str>)> = endpoints
        .iter()
        .map(|e| (text(e, &["port"]), roles_set_by(&e["relabelings"])))
        .collect();
    assert_eq!(
        scraped,
        [("edge-metrics", vec!["edge"]), ("metrics", vec!["proxy"])]
    );
    assert!(container_ports("edge-parser").contains(&"edge-metrics".to_owned()));
    assert!(container_ports("traefik").contains(&"metrics".to_owned()));
    // The k3s chart names Traefik's metrics port `metrics` too; the sidecar's is ours.
    let k3s = &documents("k3s-traefik-helmchartconfig.yaml")[0];
    let values: Value =
        serde_yaml_ng::from_str(text(k3s, &["spec", "valuesContent"])).expect("values YAML");
    let sidecar = &get(&values, &["deployment", "additionalContainers"])[0];
    assert_eq!(text(&sidecar["ports"][0], &["name"]), "edge-metrics");

    let selector = get(service_monitor, &["spec", "selector", "matchLabels"])
        .as_mapping()
        .expect("matchLabels");
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "{key:?}");
    }
    assert_eq!(
        get(service_monitor, &["spec", "namespaceSelector", "any"]).as_bool(),
        Some(true)
    );
    let endpoint = &get(service_monitor, &["spec", "endpoints"])[0];
    assert_eq!(text(endpoint, &["path"]), "/metrics");
    assert_eq!(roles_set_by(&endpoint["relabelings"]), ["service"]);
    let port = text(endpoint, &["port"]);
    assert!(
        service["spec"]["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .any(|p| p["name"] == port),
        "{port}"
    );

    let roles: std::collections::BTreeSet<String> =
        ["edge", "service"].map(str::to_owned).into_iter().collect();
    assert_eq!(roles_read_by_rules(), roles);
}

/// The PrometheusRule and the rules ConfigMap carry exactly the shipped rules files (run
/// `deploy/kubernetes/generate-rules.sh` after editing them).
#[test]
fn the_kubernetes_rules_are_the_shipped_rules() {
    const FILES: [&str; 4] = [
        "vantage-settings.rules.yml",
        "vantage-edge.rules.yml",
        "vantage-service.rules.yml",
        "vantage-reconcile.rules.yml",
    ];
    let rule = documents("vantage-prometheusrule.yaml");
    assert_eq!(rule.len(), 1);
    assert_eq!(text(&rule[0], &["kind"]), "PrometheusRule");
    assert_eq!(
        text(&rule[0], &["metadata", "labels", "release"]),
        "prometheus"
    );
    let shipped: Vec<Value> = FILES
        .iter()
        .flat_map(|file| {
            deploy_yaml(&format!("prometheus/{file}"))["groups"]
                .as_sequence()
                .expect("groups")
                .clone()
        })
        .collect();
    assert_eq!(
        get(&rule[0], &["spec", "groups"])
            .as_sequence()
            .expect("groups"),
        &shipped,
        "run deploy/kubernetes/generate-rules.sh"
    );

    let config_map = documents("vantage-rules-configmap.yaml");
    assert_eq!(config_map.len(), 1);
    assert_eq!(text(&config_map[0], &["kind"]), "ConfigMap");
    let data = config_map[0]["data"].as_mapping().expect("data");
    assert_eq!(data.len(), FILES.len());
    for file in FILES {
        let shipped = std::fs::read_to_string(deploy_dir().join("prometheus").join(file))
            .expect("rules readable");
        assert_eq!(
            text(&config_map[0], &["data", file]),
            shipped,
            "{file}: run deploy/kubernetes/generate-rules.sh"
        );
    }
}

/// Without the operator: the scrape configuration keeps annotated pods whose role the rules
/// read, labels them with their role, namespace and pod, scrapes Traefik's `metrics` port as
/// `proxy`, and loads the rules from where the ConfigMap is mounted; the sidecar's pods carry
/// the annotations. `promtool check config` accepts it (with the pods' discovery replaced by a
/// loopback target: Debian's Prometheus is built without Kubernetes discovery).
#[test]
fn the_plain_prometheus_config_scrapes_by_annotation_and_loads_the_rules() {
    let config_map = &documents("prometheus-annotations.yaml")[0];
    let source = text(config_map, &["data", "prometheus.yml"]);
    let config: Value = serde_yaml_ng::from_str(source).expect("prometheus.yml");
    assert_eq!(config["rule_files"][0], "/etc/prometheus/rules/*.rules.yml");
    let jobs = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    let names: Vec<&str> = jobs.iter().map(|j| text(j, &["job_name"])).collect();
    assert_eq!(names, ["vantage", "vantage-proxy"]);
    let targets_of = |job: &Value| -> Vec<String> {
        job["relabel_configs"]
            .as_sequence()
            .expect("relabel_configs")
            .iter()
            .filter_map(|r| r["target_label"].as_str().map(str::to_owned))
            .collect()
    };
    for job in jobs {
        let labels = targets_of(job);
        for label in ["vantage_role", "namespace", "pod"] {
            assert!(labels.iter().any(|l| l == label), "{label} in {labels:?}");
        }
    }
    let keep_roles = jobs[0]["relabel_configs"]
        .as_sequence()
        .expect("relabel_configs")
        .iter()
        .find(|r| r["source_labels"][0] == "__meta_kubernetes_pod_annotation_vantage_dev_role")
        .expect("a keep on the role");
    assert_eq!(text(keep_roles, &["action"]), "keep");
    let roles: Vec<String> = text(keep_roles, &["regex"])
        .split('|')
        .map(str::to_owned)
        .collect();
    assert_eq!(roles, roles_read_by_rules().into_iter().collect::<Vec<_>>());
    assert_eq!(roles_set_by(&jobs[1]["relabel_configs"]), ["proxy"]);

    let plain = documents("traefik-with-edge-parser.yaml");
    let pod = get(&plain[1], &["spec", "template"]);
    assert_eq!(
        text(pod, &["metadata", "annotations", "vantage.dev/role"]),
        "edge"
    );
    let k3s = &documents("k3s-traefik-helmchartconfig.yaml")[0];
    let values: Value =
        serde_yaml_ng::from_str(text(k3s, &["spec", "valuesContent"])).expect("values YAML");
    assert_eq!(
        text(
            &values,
            &["deployment", "podAnnotations", "vantage.dev/role"]
        ),
        "edge"
    );

    let rules = deploy_dir().join("prometheus");
    let checkable = source
        .replace(
            "kubernetes_sd_configs:\n      - role: pod",
            "static_configs:\n      - targets: ['127.0.0.1:9898']",
        )
        .replace(
            "/etc/prometheus/rules/",
            &format!("{}/", rules.to_str().expect("UTF-8 path")),
        );
    assert_eq!(checkable.matches("127.0.0.1:9898").count(), 2);
    let dir = crate::util::Dir::new("plain_prometheus_config");
    let path = dir.create("prometheus.yml", checkable);
    promtool(&["check", "config", path.to_str().expect("UTF-8 path")]);
}
