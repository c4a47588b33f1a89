//! The deployment files stay true to the code. No Docker engine runs on the machines that run
//! these tests, so `docker-compose.yml` is checked by reading it: the services of the stack
//! (SPEC section 9), the server's environment against the configuration keys that
//! `src/config.rs` really has, the agents' configuration files against the agent's own parser,
//! and every file the stack refers to. The configuration reference in `docs/OPERATIONS.md` is
//! checked against `src/config.rs` too, so that a new key cannot go undocumented.

use figment::providers::{Format, Toml};
use serde_json::Value;
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The agents of the compose stack.
const AGENTS: [&str; 2] = ["agent-1", "agent-2"];
/// The agent configuration keys of SPEC section 11, the stable surface the compose files use.
const AGENT_SURFACE: &[(&str, &[&str])] = &[
    ("central", &["url", "token"]),
    ("agent", &["state_dir", "listen"]),
    ("camera", &["id", "url", "expected_fps", "timezone"]),
];
/// The line of each agent template that `deploy/compose/bootstrap.sh` fills in.
const TOKEN_PLACEHOLDER: &str = "token = \"swa_SET_BY_BOOTSTRAP\"";
const AGENT_CONFIG: &str = "/etc/streamwatch-agent/agent.toml";
const AGENT_STATE: &str = "/var/lib/streamwatch-agent";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(
        service.is_object(),
        "docker-compose.yml has no service {name}"
    );
    service
}

/// A service's environment as (name, value) pairs, from either compose spelling.
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let item = item.as_str().unwrap();
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn env_value(service: &Value, name: &str) -> String {
    environment(service)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {service}"))
        .1
}

/// `${VAR:-default}` interpolation, as compose does it with `VAR` unset.
fn interpolate_defaults(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).unwrap();
        let expr = &rest[start + 2..end];
        out.push_str(expr.split_once(":-").map_or("", |(_, default)| default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `short` volume entries as (source, target).
fn volumes(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .into_iter()
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn depends_on(service: &Value, other: &str) -> Option<String> {
    match &service["depends_on"] {
        Value::Object(map) => map.get(other).map(|d| {
            d["condition"]
                .as_str()
                .unwrap_or("service_started")
                .to_owned()
        }),
        Value::Array(items) => items
            .iter()
            .any(|i| i == other)
            .then(|| "service_started".to_owned()),
        _ => None,
    }
}

/// Every configuration key that `src/config.rs` defines, as (section, key); the top-level keys
/// have the section "". Read from the source of `Settings` and its section structs, so that a
/// key added there shows up here without anyone remembering to list it.
fn config_keys() -> BTreeSet<(String, String)> {
    let source = read("src/config.rs");
    let fields = |name: &str| -> Vec<(String, String)> {
        let start = source
            .find(&format!("pub struct {name} {{"))
            .unwrap_or_else(|| panic!("src/config.rs has no struct {name}"));
        let body = &source[start..];
        let body = &body[..body.find("\n}").unwrap()];
        // A field marked `#[serde(skip)]` is no configuration key (the tests' fault hooks).
        let mut skipped = false;
        body.lines()
            .filter_map(|line| {
                let line = line.trim();
                if line == "#[serde(skip)]" {
                    skipped = true;
                    return None;
                }
                let line = line.strip_prefix("pub ")?;
                if std::mem::take(&mut skipped) {
                    return None;
                }
                let (field, ty) = line.split_once(':')?;
                Some((
                    field.trim().to_owned(),
                    ty.trim().trim_end_matches(',').to_owned(),
                ))
            })
            .collect()
    };
    let mut keys = BTreeSet::new();
    for (field, ty) in fields("Settings") {
        if ty.ends_with("Settings") {
            for (key, _) in fields(&ty) {
                keys.insert((field.clone(), key));
            }
        } else {
            keys.insert((String::new(), field));
        }
    }
    // The reader above is simple; make sure it found the keys SPEC section 11 names.
    for known in [
        ("database", "url"),
        ("http", "addr"),
        ("http", "public_url"),
        ("", "environment"),
        ("auth", "jwt_secret"),
        ("auth", "admin_token"),
        ("smtp", "url"),
        ("smtp", "from"),
        ("clock", "simulated"),
    ] {
        assert!(
            keys.contains(&(known.0.to_owned(), known.1.to_owned())),
            "{known:?} not found in src/config.rs: {keys:?}"
        );
    }
    keys
}

fn variable((section, key): &(String, String)) -> String {
    if section.is_empty() {
        format!("STREAMWATCH__{}", key.to_uppercase())
    } else {
        format!(
            "STREAMWATCH__{}__{}",
            section.to_uppercase(),
            key.to_uppercase()
        )
    }
}

/// Every `STREAMWATCH__...` variable named in `text`.
fn variables_in(text: &str) -> BTreeSet<String> {
    text.match_indices("STREAMWATCH__")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
                .trim_end_matches('_')
                .to_owned()
        })
        .collect()
}

#[test]
fn the_compose_file_has_the_whole_stack() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    assert!(
        postgres["image"]
            .as_str()
            .unwrap()
            .starts_with("postgres:15"),
        "{postgres}"
    );
    assert!(!strings(&postgres["healthcheck"]["test"]).is_empty());
    assert!(
        volumes(postgres)
            .iter()
            .any(|(_, target)| target == "/var/lib/postgresql/data"),
        "PostgreSQL keeps its data in a volume"
    );
    let mailpit = service(&compose, "mailpit");
    assert!(mailpit["image"].as_str().unwrap().contains("mailpit"));
    assert!(
        strings(&mailpit["ports"])
            .iter()
            .any(|p| p.ends_with(":8025")),
        "the web inbox is published"
    );
    let camera = service(&compose, "rtsp-camera");
    assert!(camera["image"].as_str().unwrap().contains("mediamtx"));
    assert!(
        strings(&camera["ports"])
            .iter()
            .any(|p| p.ends_with(":8554"))
    );
    for name in ["server", "bootstrap"].into_iter().chain(AGENTS) {
        service(&compose, name);
    }
    let server = service(&compose, "server");
    assert_eq!(server["build"]["dockerfile"], "Dockerfile");
    assert_eq!(
        depends_on(server, "postgres").as_deref(),
        Some("service_healthy")
    );
    assert!(strings(&server["ports"]).contains(&"8080:8080".to_owned()));
    assert!(
        strings(&server["healthcheck"]["test"])
            .iter()
            .any(|part| part.contains("/readyz")),
        "the server is healthy once /readyz answers"
    );
}

#[test]
fn the_servers_environment_uses_only_variables_that_src_config_rs_knows() {
    let compose = compose();
    let server = service(&compose, "server");
    let known: BTreeSet<String> = config_keys().iter().map(variable).collect();
    let env = environment(server);
    for (name, _) in &env {
        assert!(
            name.starts_with("STREAMWATCH__"),
            "{name}: the server reads only STREAMWATCH__ variables"
        );
        assert!(
            known.contains(name),
            "{name} is not a configuration key of src/config.rs (known: {known:?})"
        );
    }
    for required in [
        "STREAMWATCH__DATABASE__URL",
        "STREAMWATCH__AUTH__ADMIN_TOKEN",
        "STREAMWATCH__AUTH__JWT_SECRET",
        "STREAMWATCH__SMTP__URL",
        "STREAMWATCH__HTTP__PUBLIC_URL",
        "STREAMWATCH__HTTP__ADDR",
    ] {
        assert!(env.iter().any(|(k, _)| k == required), "{required} is set");
    }
    // Secrets are visibly placeholders.
    for secret in [
        "STREAMWATCH__AUTH__ADMIN_TOKEN",
        "STREAMWATCH__AUTH__JWT_SECRET",
    ] {
        let value = interpolate_defaults(&env_value(server, secret));
        assert!(value.contains("change-me"), "{secret}={value}");
    }
    let jwt = interpolate_defaults(&env_value(server, "STREAMWATCH__AUTH__JWT_SECRET"));
    assert!(
        jwt.len() >= streamwatch::config::MIN_JWT_SECRET_BYTES,
        "the placeholder JWT secret is long enough to start"
    );
    assert_eq!(
        env_value(server, "STREAMWATCH__SMTP__URL"),
        "smtp://mailpit:1025"
    );
    assert_eq!(env_value(server, "STREAMWATCH__HTTP__ADDR"), "0.0.0.0:8080");
    let database = interpolate_defaults(&env_value(server, "STREAMWATCH__DATABASE__URL"));
    let database = reqwest::Url::parse(&database).unwrap();
    assert_eq!(database.host_str(), Some("postgres"));
    let public = reqwest::Url::parse(&env_value(server, "STREAMWATCH__HTTP__PUBLIC_URL")).unwrap();
    assert!(matches!(public.scheme(), "http" | "https"));
    // The bootstrap speaks to the server with the same admin token.
    let bootstrap = service(&compose, "bootstrap");
    assert_eq!(
        env_value(bootstrap, "ADMIN_TOKEN"),
        env_value(server, "STREAMWATCH__AUTH__ADMIN_TOKEN")
    );
}

#[test]
fn every_agent_depends_on_the_server_and_runs_a_configuration_the_agent_accepts() {
    let compose = compose();
    let bootstrap = service(&compose, "bootstrap");
    let services: BTreeSet<&String> = compose["services"].as_object().unwrap().keys().collect();
    for name in AGENTS {
        let agent = service(&compose, name);
        assert_eq!(agent["build"]["dockerfile"], "edge-agent/Dockerfile");
        assert_eq!(
            strings(&agent["command"]),
            ["run", "--config", AGENT_CONFIG],
            "{name}"
        );
        assert_eq!(
            depends_on(agent, "server").as_deref(),
            Some("service_healthy"),
            "{name}"
        );
        assert_eq!(
            depends_on(agent, "bootstrap").as_deref(),
            Some("service_completed_successfully"),
            "{name}: the agent token exists before the agent starts"
        );
        let mounts = volumes(agent);
        assert!(
            mounts.iter().any(|(_, target)| target == AGENT_STATE),
            "{name}: the state directory is a volume"
        );
        // The config volume the agent reads is the one the bootstrap writes.
        let config_volume = &mounts
            .iter()
            .find(|(_, target)| target == "/etc/streamwatch-agent")
            .unwrap_or_else(|| panic!("{name}: no config volume"))
            .0;
        assert!(
            volumes(bootstrap).iter().any(
                |(source, target)| source == config_volume && *target == format!("/out/{name}")
            ),
            "{name}: the bootstrap writes {config_volume}"
        );
        assert!(compose["volumes"].get(config_volume).is_some());

        // The template: the agent's own parser accepts it once the token is in.
        let template = format!("deploy/compose/{name}.toml");
        assert!(
            volumes(bootstrap)
                .iter()
                .any(|(source, target)| source == &format!("./{template}")
                    && *target == format!("/templates/{name}.toml")),
            "{name}: the bootstrap reads {template}"
        );
        let text = read(&template);
        assert!(
            text.lines().any(|l| l.starts_with(TOKEN_PLACEHOLDER)),
            "{template}: bootstrap.sh fills in the line {TOKEN_PLACEHOLDER}"
        );
        let filled = text.replace("swa_SET_BY_BOOTSTRAP", "swa_test");
        let config = streamwatch_agent::config::Config::parse(&filled)
            .unwrap_or_else(|e| panic!("{template}: {e}"));
        assert_eq!(config.central.url.host_str(), Some("server"), "{template}");
        assert_eq!(config.central.url.port(), Some(8080), "{template}");
        assert_eq!(config.agent.state_dir, Path::new(AGENT_STATE), "{template}");
        assert!(
            strings(&agent["ports"])
                .iter()
                .any(|p| p.ends_with(&format!(":{}", config.agent.listen.port()))),
            "{name}: the local API's port is published"
        );
        for camera in &config.cameras {
            if let Ok(url) = reqwest::Url::parse(&camera.url)
                && url.scheme() == "rtsp"
            {
                let host = url.host_str().unwrap().to_owned();
                assert!(
                    services.contains(&host),
                    "{template}: camera {} reads {host}, which is no service",
                    camera.id
                );
            }
        }

        // Only the stable keys of SPEC section 11.
        let table: Value = figment::Figment::from(Toml::string(&filled))
            .extract()
            .unwrap();
        for (section, keys) in AGENT_SURFACE {
            let entries: Vec<&serde_json::Map<String, Value>> = match &table[*section] {
                Value::Object(map) => vec![map],
                Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
                _ => Vec::new(),
            };
            for entry in entries {
                for key in entry.keys() {
                    assert!(
                        keys.contains(&key.as_str()),
                        "{template}: [{section}] {key} is not in the SPEC section 11 surface"
                    );
                }
            }
        }
        for section in table.as_object().unwrap().keys() {
            assert!(
                AGENT_SURFACE.iter().any(|(s, _)| s == section),
                "{template}: [{section}]"
            );
        }
    }
}

#[test]
fn every_file_the_compose_file_refers_to_exists() {
    let compose = compose();
    for (name, service) in compose["services"].as_object().unwrap() {
        if let Some(build) = service.get("build") {
            let context = build["context"].as_str().unwrap_or(".");
            assert!(repo(context).is_dir(), "{name}: build context {context}");
            let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
            let path = repo(context).join(dockerfile);
            assert!(path.is_file(), "{name}: {}", path.display());
        }
        for (source, _) in volumes(service) {
            if source.starts_with("./") {
                assert!(repo(&source).exists(), "{name}: {source}");
            } else {
                assert!(
                    compose["volumes"].get(&source).is_some(),
                    "{name}: the named volume {source} is declared"
                );
            }
        }
    }
    let bootstrap = read("deploy/compose/bootstrap.Dockerfile");
    assert!(bootstrap.contains("COPY bootstrap.sh"));
    assert!(repo("deploy/compose/bootstrap.sh").is_file());
}

#[test]
fn the_dockerfiles_are_multi_stage_and_run_the_documented_commands() {
    for (path, package, entrypoint, cmd) in [
        (
            "Dockerfile",
            "-p streamwatch ",
            r#"ENTRYPOINT ["streamwatch"]"#,
            r#"CMD ["serve"]"#,
        ),
        (
            "edge-agent/Dockerfile",
            "-p streamwatch-agent ",
            r#"ENTRYPOINT ["streamwatch-agent"]"#,
            r#"CMD ["run", "--config", "/etc/streamwatch-agent/agent.toml"]"#,
        ),
    ] {
        let text = read(path);
        let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
        assert!(stages >= 2, "{path}: a build stage and a runtime stage");
        assert!(
            text.contains("cargo build --release --locked") && text.contains(package),
            "{path}: builds {package}from the locked workspace"
        );
        for line in [entrypoint, cmd, "USER "] {
            assert!(text.contains(line), "{path}: {line}");
        }
    }
}

#[test]
fn operations_md_documents_every_configuration_key_and_no_other() {
    let docs = read("docs/OPERATIONS.md");
    let keys = config_keys();
    for key in &keys {
        let var = variable(key);
        assert!(
            docs.contains(&format!("`{var}`")),
            "docs/OPERATIONS.md: {var}"
        );
        let dotted = if key.0.is_empty() {
            key.1.clone()
        } else {
            format!("{}.{}", key.0, key.1)
        };
        assert!(
            docs.contains(&format!("`{dotted}`")),
            "docs/OPERATIONS.md: {dotted}"
        );
    }
    let known: BTreeSet<String> = keys.iter().map(variable).collect();
    for var in variables_in(&docs) {
        // Also allowed: the prefix alone, the pattern, and a whole section (`STREAMWATCH__SMTP__*`).
        let generic = ["STREAMWATCH", "STREAMWATCH__SECTION__KEY"].contains(&var.as_str())
            || known.iter().any(|k| k.starts_with(&format!("{var}__")));
        assert!(
            known.contains(&var) || generic,
            "docs/OPERATIONS.md names {var}, which src/config.rs does not have"
        );
    }
}

#[test]
fn the_systemd_units_run_the_documented_commands() {
    let server = read("deploy/streamwatch.service");
    assert!(server.contains("ExecStart=/usr/local/bin/streamwatch serve"));
    assert!(server.contains("EnvironmentFile="));
    let agent = read("deploy/streamwatch-agent.service");
    assert!(agent.contains(&format!(
        "ExecStart=/usr/local/bin/streamwatch-agent run --config {AGENT_CONFIG}"
    )));
    assert!(agent.contains(&format!("ReadWritePaths={AGENT_STATE}")));
    let env = read("deploy/streamwatch.env.example");
    let known: BTreeSet<String> = config_keys().iter().map(variable).collect();
    for var in variables_in(&env) {
        assert!(
            known.contains(&var),
            "deploy/streamwatch.env.example: {var}"
        );
    }
}
