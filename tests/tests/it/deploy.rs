//! Deployment files against the code: `template.yaml`, `deploy/iam.json`,
//! `openapi.yaml`, `events/` and `samconfig.toml`.
//!
//! The checks are pure functions over parsed inputs that return every
//! problem they find, so each is tested twice: it passes on the repository,
//! and it reports the problem on a fixture broken on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nambari_core::base::channel::Pipe;
use nambari_core::base::config::{SenderMode, Settings};
use nambari_core::base::otp::Pepper;
use nambari_core::base::values::Provider;
use nambari_core::model::keys::user_key;
use nambari_core::model::table::{Cond, Item, Key, Page, Query, TableResult, Update, Write};
use nambari_core::ports::events::RecordingEvents;
use nambari_core::ports::id_tokens::{IdTokenClaims, IdTokenError, IdTokenVerifier};
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::ports::table::Db;
use nambari_core::ports::table::Table;
use nambari_core::services::apikeys;
use nambari_core::testing::{self, TestApp};
use nambari_tests::server::{Server, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ------------------------------------------------------------------ inputs

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML document as JSON. The template uses the long form of intrinsic
/// functions (`Ref:`, `Fn::Sub:`), so no YAML tags are involved.
fn yaml(text: &str, what: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"))
}

fn template() -> Value {
    yaml(&read("template.yaml"), "template.yaml")
}

fn openapi() -> Value {
    yaml(&read("openapi.yaml"), "openapi.yaml")
}

fn iam() -> Value {
    serde_json::from_str(&read("deploy/iam.json")).unwrap_or_else(|e| panic!("deploy/iam.json: {e}"))
}

/// A function crate under `functions/` and the route its `lib.rs` declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionCrate {
    pub name: String,
    pub method: String,
    pub path: String,
}

/// `pub const NAME: &str = "value";` in `source`.
fn string_const(source: &str, name: &str) -> Option<String> {
    let start = source.find(&format!("pub const {name}: &str = \""))?;
    let rest = &source[start..];
    let open = rest.find('"')? + 1;
    let close = rest[open..].find('"')? + open;
    Some(rest[open..close].to_owned())
}

/// Every crate in `functions/`, with the `METHOD` and `PATH` of its lib.rs.
fn function_crates() -> Vec<FunctionCrate> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("functions")).expect("functions/") {
        let dir = entry.expect("dir entry").path();
        if !dir.join("Cargo.toml").is_file() {
            continue;
        }
        let name = dir.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_owned();
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
        let (Some(method), Some(path)) = (string_const(&lib, "METHOD"), string_const(&lib, "PATH")) else {
            panic!("functions/{name}/src/lib.rs has no `pub const METHOD`/`PATH`");
        };
        out.push(FunctionCrate { name, method, path });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no function crates found");
    out
}

/// `events/<crate>/<file>.json`, parsed.
type Fixtures = BTreeMap<String, BTreeMap<String, Value>>;

fn event_fixtures() -> Fixtures {
    let mut out = Fixtures::new();
    for entry in std::fs::read_dir(root().join("events")).expect("events/") {
        let dir = entry.expect("dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_owned();
        let files = out.entry(name).or_default();
        for f in std::fs::read_dir(&dir).expect("events/<fn>/") {
            let f = f.expect("dir entry").path();
            if f.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&f).expect("fixture");
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", f.display()));
            let file = f.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_owned();
            files.insert(file, value);
        }
    }
    out
}

// ----------------------------------------------------------- template model

/// `auth-verify-otp` → `AuthVerifyOtp`; `OTP_TTL_SECONDS` → `OtpTtlSeconds`.
pub fn pascal(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut c = lower.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The SAM logical id of a function crate.
pub fn logical_id(krate: &str) -> String {
    format!("{}Function", pascal(krate))
}

fn resources(template: &Value) -> impl Iterator<Item = (&String, &Value)> {
    template["Resources"].as_object().into_iter().flatten()
}

fn functions(template: &Value) -> impl Iterator<Item = (&String, &Value)> {
    resources(template).filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
}

/// A function property, or its value in `Globals.Function`.
fn effective<'a>(template: &'a Value, function: &'a Value, prop: &str) -> &'a Value {
    match &function["Properties"][prop] {
        Value::Null => &template["Globals"]["Function"][prop],
        v => v,
    }
}

/// The environment of a function: `Globals` overlaid with its own.
fn environment(template: &Value, function: &Value) -> BTreeMap<String, Value> {
    let mut env = BTreeMap::new();
    for vars in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        for (k, v) in vars.as_object().into_iter().flatten() {
            env.insert(k.clone(), v.clone());
        }
    }
    env
}

/// The `(METHOD, path)` of each HttpApi event of a function, and the API it is on.
fn http_routes(function: &Value) -> Vec<(String, String, Value)> {
    function["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, e)| e["Type"] == "HttpApi")
        .map(|(_, e)| {
            let p = &e["Properties"];
            (
                p["Method"].as_str().unwrap_or("").to_ascii_uppercase(),
                p["Path"].as_str().unwrap_or("").to_owned(),
                p["ApiId"].clone(),
            )
        })
        .collect()
}

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Every `(METHOD, path, operationId)` of an OpenAPI document.
fn openapi_operations(openapi: &Value) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for (path, item) in openapi["paths"].as_object().into_iter().flatten() {
        for m in HTTP_METHODS {
            if let Some(op) = item.get(m) {
                out.push((
                    m.to_ascii_uppercase(),
                    path.clone(),
                    op["operationId"].as_str().map(str::to_owned),
                ));
            }
        }
    }
    out
}

// ------------------------------------------------------ consistency check

/// Whether an API Gateway v2 event is a request of `c`'s route: its method,
/// a path the route matches (`/sessions/ses_1` for `/sessions/{id}`, as API
/// Gateway matches it), `routeKey` if it has one, and exactly the path
/// parameters API Gateway would pass.
fn is_request_of(event: &Value, c: &FunctionCrate) -> bool {
    let http = &event["requestContext"]["http"];
    let Some(path) = http["path"].as_str() else {
        return false;
    };
    let Some(params) = nambari_local::match_path(&c.path, path) else {
        return false;
    };
    let want_params: serde_json::Map<String, Value> = params.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let got_params = match &event["pathParameters"] {
        Value::Null => serde_json::Map::new(),
        Value::Object(m) => m.clone(),
        _ => return false,
    };
    let route_key = format!("{} {}", c.method, c.path);
    http["method"] == json!(c.method)
        && event["rawPath"] == json!(path)
        && [&event["routeKey"], &event["requestContext"]["routeKey"]]
            .iter()
            .all(|k| k.is_null() || **k == json!(route_key))
        && got_params == want_params
}

/// Every way the template, the OpenAPI document and the event fixtures
/// disagree with the function crates. Empty when they agree.
pub fn consistency_problems(
    crates: &[FunctionCrate],
    template: &Value,
    openapi: &Value,
    fixtures: &Fixtures,
) -> Vec<String> {
    let mut problems = Vec::new();
    let by_name: BTreeMap<&str, &FunctionCrate> = crates.iter().map(|c| (c.name.as_str(), c)).collect();
    let by_id: BTreeMap<String, &FunctionCrate> = crates.iter().map(|c| (logical_id(&c.name), c)).collect();
    let routes: BTreeSet<(String, String)> = crates.iter().map(|c| (c.method.clone(), c.path.clone())).collect();
    let api_ref = json!({"Ref": "HttpApi"});

    for c in crates {
        let id = logical_id(&c.name);
        let route = format!("{} {}", c.method, c.path);
        // The template.
        match template["Resources"].get(&id) {
            None => problems.push(format!("{}: no resource {id} in template.yaml", c.name)),
            Some(f) if f["Type"] != "AWS::Serverless::Function" => {
                problems.push(format!("{}: {id} is not an AWS::Serverless::Function", c.name))
            }
            Some(f) => {
                let expect = |what: &str, got: &Value, want: Value, problems: &mut Vec<String>| {
                    if *got != want {
                        problems.push(format!("{}: {id} {what} is {got}, not {want}", c.name));
                    }
                };
                expect(
                    "CodeUri",
                    &f["Properties"]["CodeUri"],
                    json!(format!("functions/{}", c.name)),
                    &mut problems,
                );
                expect(
                    "Metadata.BuildMethod",
                    &f["Metadata"]["BuildMethod"],
                    json!("rust-cargolambda"),
                    &mut problems,
                );
                expect(
                    "Metadata.BuildProperties.Binary",
                    &f["Metadata"]["BuildProperties"]["Binary"],
                    json!(c.name),
                    &mut problems,
                );
                expect(
                    "Handler",
                    effective(template, f, "Handler"),
                    json!("bootstrap"),
                    &mut problems,
                );
                expect(
                    "Runtime",
                    effective(template, f, "Runtime"),
                    json!("provided.al2023"),
                    &mut problems,
                );
                expect(
                    "Architectures",
                    effective(template, f, "Architectures"),
                    json!(["arm64"]),
                    &mut problems,
                );
                let mine: Vec<_> = http_routes(f)
                    .into_iter()
                    .filter(|(m, p, _)| *m == c.method && *p == c.path)
                    .collect();
                match mine.as_slice() {
                    [] => problems.push(format!("{}: {id} has no HttpApi route {route}", c.name)),
                    [(_, _, api)] if *api != api_ref => {
                        problems.push(format!("{}: the route {route} is not on the HttpApi resource", c.name))
                    }
                    [_] => {}
                    _ => problems.push(format!("{}: {id} declares {route} twice", c.name)),
                }
            }
        }
        // The event fixtures.
        match fixtures.get(&c.name) {
            None => problems.push(format!("{}: no events/{}/ fixtures", c.name, c.name)),
            Some(files) => {
                if !files.contains_key("ok.json") {
                    problems.push(format!("{}: no events/{}/ok.json (the happy path)", c.name, c.name));
                }
                for (file, event) in files {
                    if !is_request_of(event, c) {
                        problems.push(format!("{}: events/{}/{file} is not a {route} request", c.name, c.name));
                    }
                }
            }
        }
        // The OpenAPI document.
        let op = &openapi["paths"][&c.path][c.method.to_ascii_lowercase()];
        if op.is_null() {
            problems.push(format!("{}: no OpenAPI operation {route}", c.name));
        } else if op["operationId"] != json!(c.name) {
            problems.push(format!(
                "{}: the OpenAPI operation {route} has operationId {}, not {}",
                c.name, op["operationId"], c.name
            ));
        }
    }

    // What the template, the document and events/ have that no crate has.
    for (id, f) in functions(template) {
        if !by_id.contains_key(id) {
            problems.push(format!("template.yaml: function {id} has no crate in functions/"));
        }
        for (m, p, _) in http_routes(f) {
            if !routes.contains(&(m.clone(), p.clone())) {
                problems.push(format!("template.yaml: route {m} {p} ({id}) has no crate"));
            }
        }
    }
    for (m, p, op_id) in openapi_operations(openapi) {
        if !routes.contains(&(m.clone(), p.clone())) {
            problems.push(format!("openapi.yaml: {m} {p} has no crate"));
        }
        if op_id.as_deref().is_none_or(|o| !by_name.contains_key(o)) {
            problems.push(format!(
                "openapi.yaml: {m} {p} has operationId {op_id:?}, which is not a crate"
            ));
        }
    }
    for dir in fixtures.keys() {
        if !by_name.contains_key(dir.as_str()) {
            problems.push(format!("events/{dir}/ has no crate"));
        }
    }
    problems
}

// --------------------------------------------------------------- IAM check

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// The inline policy statements of a function.
fn statements(function: &Value) -> Vec<Value> {
    as_list(&function["Properties"]["Policies"])
        .iter()
        .flat_map(|p| as_list(&p["Statement"]))
        .collect()
}

/// The secret a `<NAME>_SECRET_ARN` variable and a policy refer to: `OTP_PEPPER` → `OtpPepperSecret`.
fn secret_resource(name: &str) -> String {
    format!("{}Secret", pascal(name))
}

/// `sns:Publish` is two grants, told apart by the resource: SMS to phone
/// numbers (`NotResource` every topic: direct SMS has no resource ARN), and
/// the stack's events topic (`Resource` `Ref: EventsTopic`, listed in
/// `deploy/iam.json` as [`EVENTS_PUBLISH`]). Anything else is not a grant the
/// functions need. The name the grant goes by, or the problem.
fn publish_grant(statement: &Value) -> Result<&'static str, String> {
    let events_topic = vec![json!({"Ref": "EventsTopic"})];
    let every_topic = vec![json!({"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"})];
    let (resource, not_resource) = (as_list(&statement["Resource"]), as_list(&statement["NotResource"]));
    if resource == events_topic && not_resource.is_empty() {
        Ok(EVENTS_PUBLISH)
    } else if resource.is_empty() && not_resource == every_topic {
        Ok("sns:Publish")
    } else {
        Err(format!(
            "grants sns:Publish on Resource {resource:?} / NotResource {not_resource:?}: neither SMS to phone numbers only (NotResource {every_topic:?}) nor the events topic (Resource {events_topic:?})"
        ))
    }
}

/// Every way the functions' IAM policies differ from `deploy/iam.json`
/// (`{crate: {"actions": {action: why}, "secrets": [NAME, …]}}`), or grant
/// more than it needs. Empty when they agree. See [`publish_grant`] for the
/// two `sns:Publish` grants.
pub fn iam_problems(crates: &[String], template: &Value, iam: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let listed: BTreeSet<&str> = iam.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    for missing in crates.iter().filter(|c| !listed.contains(c.as_str())) {
        problems.push(format!("deploy/iam.json: no entry for {missing}"));
    }
    for extra in listed.iter().filter(|l| !crates.iter().any(|c| c == *l)) {
        problems.push(format!("deploy/iam.json: {extra} is not a function crate"));
    }
    let table_arn = json!({"Fn::GetAtt": ["Table", "Arn"]});
    let index_arn = json!({"Fn::Sub": "${Table.Arn}/index/gsi1"});
    for krate in crates {
        let id = logical_id(krate);
        let Some(f) = template["Resources"].get(&id) else {
            problems.push(format!("{krate}: no {id} in template.yaml"));
            continue;
        };
        let entry = &iam[krate.as_str()];
        let declared: BTreeSet<String> = entry["actions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(a, _)| a.clone())
            .collect();
        let secrets: BTreeSet<String> = entry["secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();

        let mut granted = BTreeSet::new();
        let mut secret_refs = BTreeSet::new();
        for s in statements(f) {
            if s["Effect"] != "Allow" {
                continue;
            }
            let actions: Vec<String> = as_list(&s["Action"])
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            let resources = as_list(&s["Resource"]);
            let publishes = actions.iter().any(|a| a == "sns:Publish");
            if publishes && actions.len() != 1 {
                problems.push(format!(
                    "{krate}: {id} mixes sns:Publish with other actions in one statement"
                ));
            }
            if !s["NotResource"].is_null() && !publishes {
                problems.push(format!(
                    "{krate}: {id} grants {actions:?} on a NotResource (only SMS may)"
                ));
            }
            for a in &actions {
                if a.contains('*') {
                    problems.push(format!("{krate}: {id} grants the wildcard action {a}"));
                }
                if a == "sns:Publish" {
                    match publish_grant(&s) {
                        Ok(name) => granted.insert(name.to_owned()),
                        Err(why) => {
                            problems.push(format!("{krate}: {id} {why}"));
                            granted.insert(a.clone())
                        }
                    };
                } else {
                    granted.insert(a.clone());
                }
            }
            if resources.iter().any(|r| r.as_str().is_some_and(|r| r.contains('*'))) {
                problems.push(format!("{krate}: {id} grants {actions:?} on a wildcard resource"));
            }
            let dynamo = actions.iter().filter(|a| a.starts_with("dynamodb:")).count();
            if dynamo > 0 {
                if dynamo != actions.len() {
                    problems.push(format!(
                        "{krate}: {id} mixes DynamoDB and other actions in one statement"
                    ));
                }
                // The table; its index only with Query, alone when only the
                // index is queried (whether a function queries the table or
                // the index is the usage check's to say).
                let table_only = vec![table_arn.clone()];
                let with_index = vec![table_arn.clone(), index_arn.clone()];
                let index_only = vec![index_arn.clone()];
                let queries = actions.iter().any(|a| a == "dynamodb:Query");
                let only_queries = actions.iter().all(|a| a == "dynamodb:Query");
                if resources != table_only
                    && !(queries && resources == with_index)
                    && !(only_queries && resources == index_only)
                {
                    problems.push(format!(
                        "{krate}: {id} grants DynamoDB on {resources:?}, not {table_only:?} (the table, and its index only to Query)"
                    ));
                }
            }
            if actions.iter().any(|a| a == "secretsmanager:GetSecretValue") {
                if actions.len() != 1 {
                    problems.push(format!("{krate}: {id} mixes GetSecretValue with other actions"));
                }
                for r in &resources {
                    match r["Ref"].as_str() {
                        Some(name) => {
                            secret_refs.insert(name.to_owned());
                        }
                        None => problems.push(format!("{krate}: {id} reads a secret that is not a Ref: {r}")),
                    }
                }
            }
        }
        if granted != declared {
            let extra: Vec<_> = granted.difference(&declared).collect();
            let missing: Vec<_> = declared.difference(&granted).collect();
            problems.push(format!(
                "{krate}: {id} policy differs from deploy/iam.json: granted but not listed {extra:?}, listed but not granted {missing:?}"
            ));
        }
        let want_refs: BTreeSet<String> = secrets.iter().map(|s| secret_resource(s)).collect();
        if secret_refs != want_refs {
            problems.push(format!(
                "{krate}: {id} may read secrets {secret_refs:?}, deploy/iam.json lists {want_refs:?}"
            ));
        }
        // Each secret it may read, and only those, is named to it by a
        // <NAME>_SECRET_ARN variable (which the secrets loader reads).
        let env_secrets: BTreeMap<String, Value> = environment(template, f)
            .into_iter()
            .filter(|(k, _)| k.ends_with("_SECRET_ARN"))
            .collect();
        let want_env: BTreeMap<String, Value> = secrets
            .iter()
            .map(|s| (format!("{s}_SECRET_ARN"), json!({"Ref": secret_resource(s)})))
            .collect();
        // Only the functions that send get real senders (and so the SNS
        // and SES clients and the WhatsApp token); the others start with
        // SENDERS=none and never send. Publishing events is not sending:
        // only SMS `sns:Publish` counts.
        let sends = ["sns:Publish", "ses:SendEmail"].iter().any(|a| declared.contains(*a))
            || secrets.contains("WHATSAPP_TOKEN");
        let senders = environment(template, f).get("SENDERS").cloned().unwrap_or(Value::Null);
        let want_senders = if sends {
            json!({"Ref": "Senders"})
        } else {
            json!("none")
        };
        if senders != want_senders {
            problems.push(format!("{krate}: {id} has SENDERS {senders}, not {want_senders}"));
        }
        if env_secrets != want_env {
            problems.push(format!(
                "{krate}: {id} has secret variables {:?}, deploy/iam.json lists {:?}",
                env_secrets.keys().collect::<Vec<_>>(),
                want_env.keys().collect::<Vec<_>>()
            ));
        }
    }
    problems
}

// ------------------------------------------------------------------- tests

#[test]
fn the_template_openapi_and_fixtures_match_the_function_crates() {
    let problems = consistency_problems(&function_crates(), &template(), &openapi(), &event_fixtures());
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn local_mode_mounts_every_function_crate_on_its_route() {
    let mounted: Vec<FunctionCrate> = {
        let mut v: Vec<_> = nambari_local::routes()
            .iter()
            .map(|r| FunctionCrate {
                name: r.function.to_owned(),
                method: r.method.to_owned(),
                path: r.path.to_owned(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(mounted, function_crates());
}

/// Two crates, and a template, document and fixtures that match them.
fn fixture() -> (Vec<FunctionCrate>, Value, Value, Fixtures) {
    let crates = vec![
        FunctionCrate {
            name: "auth-check".into(),
            method: "POST".into(),
            path: "/api/v1/auth/check".into(),
        },
        FunctionCrate {
            name: "jwks".into(),
            method: "GET".into(),
            path: "/.well-known/jwks.json".into(),
        },
    ];
    let template = yaml(
        r#"
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Architectures: [arm64]
Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
  AuthCheckFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: auth-check}}
    Properties:
      CodeUri: functions/auth-check
      Events:
        Http: {Type: HttpApi, Properties: {ApiId: {Ref: HttpApi}, Method: POST, Path: /api/v1/auth/check}}
  JwksFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: jwks}}
    Properties:
      CodeUri: functions/jwks
      Events:
        Http: {Type: HttpApi, Properties: {ApiId: {Ref: HttpApi}, Method: GET, Path: /.well-known/jwks.json}}
"#,
        "fixture template",
    );
    let openapi = yaml(
        r#"
paths:
  /api/v1/auth/check:
    post: {operationId: auth-check}
  /.well-known/jwks.json:
    get: {operationId: jwks}
"#,
        "fixture document",
    );
    let event = |m: &str, p: &str| json!({"rawPath": p, "requestContext": {"http": {"method": m, "path": p}}});
    let mut fixtures = Fixtures::new();
    fixtures.insert(
        "auth-check".into(),
        BTreeMap::from([("ok.json".into(), event("POST", "/api/v1/auth/check"))]),
    );
    fixtures.insert(
        "jwks".into(),
        BTreeMap::from([("ok.json".into(), event("GET", "/.well-known/jwks.json"))]),
    );
    (crates, template, openapi, fixtures)
}

fn problems_of(f: &(Vec<FunctionCrate>, Value, Value, Fixtures)) -> Vec<String> {
    consistency_problems(&f.0, &f.1, &f.2, &f.3)
}

fn assert_reported(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}, got {problems:#?}"
    );
}

#[test]
fn the_consistency_check_passes_on_a_matching_fixture() {
    assert_eq!(problems_of(&fixture()), Vec::<String>::new());
}

#[test]
fn a_crate_without_a_template_function_is_reported() {
    let mut f = fixture();
    f.1["Resources"].as_object_mut().unwrap().remove("JwksFunction");
    assert_eq!(
        problems_of(&f),
        vec!["jwks: no resource JwksFunction in template.yaml".to_owned()]
    );
}

#[test]
fn a_crate_whose_route_was_removed_is_reported() {
    let mut f = fixture();
    f.1["Resources"]["AuthCheckFunction"]["Properties"]
        .as_object_mut()
        .unwrap()
        .remove("Events");
    assert_eq!(
        problems_of(&f),
        vec!["auth-check: AuthCheckFunction has no HttpApi route POST /api/v1/auth/check".to_owned()]
    );
}

#[test]
fn a_route_on_the_wrong_path_is_reported_both_ways() {
    let mut f = fixture();
    f.1["Resources"]["AuthCheckFunction"]["Properties"]["Events"]["Http"]["Properties"]["Path"] =
        json!("/api/v1/auth/chek");
    let p = problems_of(&f);
    assert_reported(
        &p,
        "auth-check: AuthCheckFunction has no HttpApi route POST /api/v1/auth/check",
    );
    assert_reported(
        &p,
        "template.yaml: route POST /api/v1/auth/chek (AuthCheckFunction) has no crate",
    );
}

#[test]
fn a_template_function_without_a_crate_is_reported() {
    let mut f = fixture();
    let extra = f.1["Resources"]["JwksFunction"].clone();
    f.1["Resources"]["OldFunction"] = extra;
    f.1["Resources"]["OldFunction"]["Properties"]["Events"]["Http"]["Properties"]["Path"] = json!("/api/v1/old");
    let p = problems_of(&f);
    assert_reported(&p, "template.yaml: function OldFunction has no crate in functions/");
    assert_reported(&p, "template.yaml: route GET /api/v1/old (OldFunction) has no crate");
}

#[test]
fn a_crate_without_a_fixture_or_an_openapi_operation_is_reported() {
    let mut f = fixture();
    f.3.remove("jwks");
    f.2["paths"].as_object_mut().unwrap().remove("/.well-known/jwks.json");
    let p = problems_of(&f);
    assert_reported(&p, "jwks: no events/jwks/ fixtures");
    assert_reported(&p, "jwks: no OpenAPI operation GET /.well-known/jwks.json");
    assert_eq!(p.len(), 2, "{p:#?}");
}

#[test]
fn an_openapi_path_or_fixture_folder_without_a_crate_is_reported() {
    let mut f = fixture();
    f.2["paths"]["/api/v1/users"] = json!({"get": {"operationId": "users-get"}});
    f.3.insert("users-get".into(), BTreeMap::new());
    let p = problems_of(&f);
    assert_reported(&p, "openapi.yaml: GET /api/v1/users has no crate");
    assert_reported(
        &p,
        "openapi.yaml: GET /api/v1/users has operationId Some(\"users-get\"), which is not a crate",
    );
    assert_reported(&p, "events/users-get/ has no crate");
}

#[test]
fn a_fixture_of_another_route_and_a_missing_happy_path_are_reported() {
    let mut f = fixture();
    let wrong = json!({"rawPath": "/api/v1/auth/check", "requestContext": {"http": {"method": "POST", "path": "/api/v1/auth/check"}}});
    f.3.insert("jwks".into(), BTreeMap::from([("stale.json".to_owned(), wrong)]));
    let p = problems_of(&f);
    assert_reported(&p, "jwks: no events/jwks/ok.json");
    assert_reported(
        &p,
        "jwks: events/jwks/stale.json is not a GET /.well-known/jwks.json request",
    );
}

#[test]
fn a_fixture_of_a_route_with_a_path_parameter_must_carry_the_parameters_api_gateway_passes() {
    let c = FunctionCrate {
        name: "account-session-revoke".into(),
        method: "DELETE".into(),
        path: "/api/v1/account/sessions/{id}".into(),
    };
    let event = |path: &str, params: Value| {
        json!({"rawPath": path, "routeKey": "DELETE /api/v1/account/sessions/{id}", "pathParameters": params,
            "requestContext": {"http": {"method": "DELETE", "path": path}}})
    };
    assert!(is_request_of(
        &event("/api/v1/account/sessions/ses_1", json!({"id": "ses_1"})),
        &c
    ));
    assert!(!is_request_of(
        &event("/api/v1/account/sessions/ses_1", json!({"id": "ses_2"})),
        &c
    ));
    assert!(!is_request_of(
        &event("/api/v1/account/sessions/ses_1", Value::Null),
        &c
    ));
    assert!(!is_request_of(&event("/api/v1/account/sessions", json!({})), &c));
    let mut other_route = event("/api/v1/account/sessions/ses_1", json!({"id": "ses_1"}));
    other_route["routeKey"] = json!("GET /api/v1/account/sessions/{id}");
    assert!(!is_request_of(&other_route, &c));
}

#[test]
fn the_consistency_check_fails_when_a_crate_is_removed_from_the_real_template() {
    let mut t = template();
    t["Resources"].as_object_mut().unwrap().remove("AuthVerifyOtpFunction");
    let p = consistency_problems(&function_crates(), &t, &openapi(), &event_fixtures());
    assert_eq!(
        p,
        vec!["auth-verify-otp: no resource AuthVerifyOtpFunction in template.yaml".to_owned()]
    );
}

// ------------------------------------------------------------------- IAM

fn crate_names() -> Vec<String> {
    function_crates().into_iter().map(|c| c.name).collect()
}

#[test]
fn every_function_policy_grants_exactly_the_actions_listed_in_deploy_iam_json() {
    let problems = iam_problems(&crate_names(), &template(), &iam());
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn a_function_that_never_sends_but_starts_real_senders_is_reported() {
    let mut t = template();
    t["Resources"]["JwksFunction"]["Properties"]["Environment"]["Variables"]
        .as_object_mut()
        .unwrap()
        .remove("SENDERS");
    let p = iam_problems(&crate_names(), &t, &iam());
    assert_eq!(
        p,
        vec!["jwks: JwksFunction has SENDERS {\"Ref\":\"Senders\"}, not \"none\"".to_owned()]
    );
}

#[test]
fn an_action_granted_but_not_listed_is_reported() {
    let mut t = template();
    let statements = t["Resources"]["AuthCheckFunction"]["Properties"]["Policies"][0]["Statement"]
        .as_array_mut()
        .unwrap();
    let table = statements.iter_mut().find(|s| s["Sid"] == "Table").unwrap();
    table["Action"].as_array_mut().unwrap().push(json!("dynamodb:Scan"));
    let p = iam_problems(&crate_names(), &t, &iam());
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_reported(&p, "granted but not listed [\"dynamodb:Scan\"]");
}

#[test]
fn a_listed_action_that_is_not_granted_and_a_stray_secret_are_reported() {
    let mut doc = iam();
    doc["jwks"]["actions"]["dynamodb:GetItem"] = json!("pretend");
    doc["jwks"]["secrets"]
        .as_array_mut()
        .unwrap()
        .push(json!("WHATSAPP_TOKEN"));
    let p = iam_problems(&crate_names(), &template(), &doc);
    assert_reported(&p, "listed but not granted [\"dynamodb:GetItem\"]");
    assert_reported(&p, "jwks: JwksFunction may read secrets");
    assert_reported(&p, "jwks: JwksFunction has secret variables");
}

#[test]
fn a_policy_on_the_whole_account_is_reported() {
    let mut t = template();
    let statements = t["Resources"]["JwksFunction"]["Properties"]["Policies"][0]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.push(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}));
    let p = iam_problems(&crate_names(), &t, &iam());
    assert_reported(&p, "grants the wildcard action dynamodb:*");
    assert_reported(&p, "on a wildcard resource");
}

/// The statement `sid` of `function`'s policy in `t`.
fn statement_mut<'a>(t: &'a mut Value, function: &str, sid: &str) -> &'a mut Value {
    t["Resources"][function]["Properties"]["Policies"][0]["Statement"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("{function} has no statement {sid}"))
}

#[test]
fn the_events_grant_is_told_apart_from_sms_by_its_resource() {
    // auth-verify-otp publishes events and never sends a code: its events
    // grant asks for no real senders (the repository passes). On another
    // topic, or on every resource, it is neither grant.
    let other_topic = json!([{"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:other"}]);
    for resource in [other_topic, json!("*")] {
        let mut t = template();
        statement_mut(&mut t, "AuthVerifyOtpFunction", "Events")["Resource"] = resource;
        let p = iam_problems(&crate_names(), &t, &iam());
        assert_reported(
            &p,
            "auth-verify-otp: AuthVerifyOtpFunction grants sns:Publish on Resource",
        );
        assert_reported(
            &p,
            "granted but not listed [\"sns:Publish\"], listed but not granted [\"sns:Publish (events topic)\"]",
        );
    }
    // Granted and listed as SMS instead: then it would have to start real senders.
    let mut t = template();
    let st = statement_mut(&mut t, "AuthVerifyOtpFunction", "Events");
    st.as_object_mut().unwrap().remove("Resource");
    st["NotResource"] = json!([{"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}]);
    let mut doc = iam();
    let actions = doc["auth-verify-otp"]["actions"].as_object_mut().unwrap();
    let why = actions
        .remove(EVENTS_PUBLISH)
        .expect("auth-verify-otp publishes events");
    actions.insert("sns:Publish".into(), why);
    assert_eq!(
        iam_problems(&crate_names(), &t, &doc),
        vec!["auth-verify-otp: AuthVerifyOtpFunction has SENDERS \"none\", not {\"Ref\":\"Senders\"}".to_owned()]
    );
    // A NotResource on anything but SMS is reported.
    let mut t = template();
    let table = statement_mut(&mut t, "JwksFunction", "Secrets");
    table["NotResource"] = table["Resource"].take();
    assert_reported(
        &iam_problems(&crate_names(), &t, &iam()),
        "jwks: JwksFunction grants [\"secretsmanager:GetSecretValue\"] on a NotResource",
    );
}

// -------------------------------------------------------------- settings

/// The name of every setting the code reads (through `Settings::from_lookup`).
fn settings_read() -> BTreeSet<String> {
    let asked = Mutex::new(BTreeSet::new());
    let _ = Settings::from_lookup(|k| {
        asked.lock().unwrap().insert(k.to_owned());
        None
    });
    asked.into_inner().unwrap()
}

#[test]
fn every_setting_the_code_reads_is_a_parameter_passed_to_every_function() {
    let t = template();
    let globals = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap()
        .clone();
    let read = settings_read();
    assert!(read.contains("OTP_TTL_SECONDS") && read.contains("STAGE"), "{read:?}");
    let mut problems = Vec::new();
    for name in &read {
        // The stack's own resources; every other setting is a parameter.
        let want = match name.as_str() {
            "TABLE_NAME" => json!({"Ref": "Table"}),
            "EVENTS_TOPIC_ARN" => json!({"Ref": "EventsTopic"}),
            _ => json!({"Ref": pascal(name)}),
        };
        match globals.get(name) {
            None => problems.push(format!("{name}: read by the code, not in Globals.Function.Environment")),
            Some(v) if *v != want => problems.push(format!("{name}: is {v}, not {want}")),
            Some(_) => {}
        }
        if !["TABLE_NAME", "EVENTS_TOPIC_ARN"].contains(&name.as_str()) && t["Parameters"][pascal(name)].is_null() {
            problems.push(format!("{name}: no parameter {}", pascal(name)));
        }
    }
    for name in globals.keys() {
        if !read.contains(name) && name != "RUST_LOG" {
            problems.push(format!("{name}: passed to every function but read by no setting"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The settings a stage's functions start with: the template's defaults,
/// then `overrides` (samconfig's `parameter_overrides`).
fn stage_environment(t: &Value, overrides: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let param = |name: &str| -> String {
        overrides
            .get(name)
            .cloned()
            .unwrap_or_else(|| match &t["Parameters"][name]["Default"] {
                Value::String(s) => s.clone(),
                Value::Null => panic!("parameter {name} has no default and no override"),
                other => other.to_string(),
            })
    };
    let mut env = BTreeMap::new();
    for (k, v) in t["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap()
    {
        let value = match v["Ref"].as_str() {
            Some("Table") => format!("nambari-{}", param("Stage")),
            Some("EventsTopic") => {
                let name = t["Resources"]["EventsTopic"]["Properties"]["TopicName"]["Fn::Sub"]
                    .as_str()
                    .expect("EventsTopic's TopicName is an Fn::Sub");
                format!(
                    "arn:aws:sns:eu-west-1:123456789012:{}",
                    name.replace("${Stage}", &param("Stage"))
                )
            }
            Some(p) => param(p),
            None => panic!("{k}: not a Ref"),
        };
        env.insert(k.clone(), value);
    }
    env
}

/// `Key=Value Key2=Value2` (samconfig's `parameter_overrides`).
fn parse_overrides(s: &str) -> BTreeMap<String, String> {
    s.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{kv}: not Key=Value"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

#[test]
fn every_stage_of_samconfig_starts_with_settings_the_functions_accept() {
    let t = template();
    let config: toml::Table = read("samconfig.toml").parse().expect("samconfig.toml is TOML");
    assert_eq!(config["version"].as_float(), Some(0.1));
    let defaults = stage_environment(&t, &BTreeMap::new());
    let s = Settings::from_lookup(|k| defaults.get(k).cloned()).expect("the template's defaults are valid");
    assert_eq!(s.otp_ttl, Settings::default().otp_ttl);
    for stage in ["dev", "staging", "prod"] {
        let deploy = &config[stage]["deploy"]["parameters"];
        assert_eq!(deploy["stack_name"].as_str(), Some(format!("nambari-{stage}").as_str()));
        assert_eq!(deploy["resolve_s3"].as_bool(), Some(true), "{stage}");
        assert!(
            deploy["capabilities"]
                .as_str()
                .is_some_and(|c| c.contains("CAPABILITY_IAM"))
        );
        assert_eq!(
            config[stage]["build"]["parameters"]["beta_features"].as_bool(),
            Some(true)
        );
        let overrides = parse_overrides(deploy["parameter_overrides"].as_str().expect("parameter_overrides"));
        assert_eq!(overrides.get("Stage").map(String::as_str), Some(stage));
        for k in overrides.keys() {
            assert!(
                !t["Parameters"][k].is_null(),
                "{stage}: {k} is not a template parameter"
            );
        }
        let env = stage_environment(&t, &overrides);
        let s = Settings::from_lookup(|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{stage}: the functions would refuse to start: {e:?}"));
        assert_eq!(s.table_name, format!("nambari-{stage}"));
        assert!(
            s.invite_url_template.is_some(),
            "{stage}: POST /api/v1/invites needs InviteUrlTemplate"
        );
        assert_eq!(
            s.events_topic_arn.as_deref(),
            Some(format!("arn:aws:sns:eu-west-1:123456789012:nambari-{stage}-events").as_str()),
            "{stage}: publishes its events to its own topic"
        );
        assert_eq!(s.sandbox, stage != "prod", "{stage}: sandbox codes only outside prod");
        if s.delivery.senders == SenderMode::Real {
            s.delivery
                .check_real(&s.channels)
                .unwrap_or_else(|e| panic!("{stage}: the sending functions would refuse to start: {e:?}"));
        } else {
            assert!(
                s.sandbox,
                "{stage}: without senders only a sandbox stage can sign anyone in"
            );
        }
    }
}

// ------------------------------------------------------------- cfn-lint

#[test]
fn cfn_lint_passes_on_the_template() {
    let out = std::process::Command::new("cfn-lint")
        .arg("template.yaml")
        .current_dir(root())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "\n\n*** cfn-lint not found: install it with pip install cfn-lint — ./scripts/test does this. ***\n\n"
        ),
        Err(e) => panic!("running cfn-lint: {e}"),
    };
    assert!(
        out.status.success(),
        "cfn-lint template.yaml failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// --------------------------------------------------------------- OpenAPI

#[test]
fn the_openapi_error_codes_are_exactly_the_codes_the_code_returns() {
    let source = read("shared/core/src/base/error.rs");
    let body = source
        .split("pub fn code(&self)")
        .nth(1)
        .and_then(|s| s.split("pub fn retry_after(&self)").next())
        .expect("Error::code in base/error.rs");
    let from_code: BTreeSet<String> = body
        .split("=> \"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect();
    let doc = openapi();
    let listed: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(from_code.contains("PAYLOAD_TOO_LARGE") && from_code.contains("SERVICE_UNAVAILABLE"));
    assert_eq!(listed, from_code);
}

#[test]
fn the_openapi_version_is_the_workspace_version() {
    assert_eq!(openapi()["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(openapi()["openapi"], "3.1.0");
}

/// A raw `GET` on local mode: status, content type and body.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn local_mode_serves_the_openapi_document() {
    let s = Server::start(Store::Memory).await;
    let (status, content_type, body) = raw_get(s.addr, "/api/v1/openapi.yaml").await;
    assert_eq!((status, content_type.as_str()), (200, "application/yaml"));
    assert_eq!(body, read("openapi.yaml"));
}

// ------------------------------------- what the functions really call

/// What the recorder notes, besides `dynamodb:Query`, for a query on the
/// index: IAM authorises the index as a resource of its own.
const INDEX_QUERY: &str = "dynamodb:Query on the index gsi1";

/// What the recorder notes, besides `dynamodb:Query`, for a query on the
/// table itself (not the index).
const TABLE_QUERY: &str = "dynamodb:Query on the table";

/// What the recorder notes for a publish on the events port: `sns:Publish`
/// on the stack's `EventsTopic`, told apart from SMS (`sns:Publish` to phone
/// numbers) by its resource, as [`iam_problems`] tells the grants apart.
const EVENTS_PUBLISH: &str = "sns:Publish (events topic)";

/// Records the DynamoDB action behind every call of the store port.
struct RecordingTable {
    inner: MemoryTable,
    actions: Mutex<Vec<&'static str>>,
}

impl RecordingTable {
    fn record(&self, action: &'static str) {
        self.actions.lock().unwrap().push(action);
    }

    fn taken(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.actions.lock().unwrap())
    }
}

#[async_trait]
impl Table for RecordingTable {
    async fn get(&self, key: &Key) -> TableResult<Option<Item>> {
        self.record("dynamodb:GetItem");
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> TableResult<Vec<Option<Item>>> {
        self.record("dynamodb:BatchGetItem");
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> TableResult<()> {
        self.record("dynamodb:PutItem");
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, ops: Vec<Update>, cond: Option<Cond>) -> TableResult<Item> {
        self.record("dynamodb:UpdateItem");
        self.inner.update(key, ops, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> TableResult<()> {
        self.record("dynamodb:DeleteItem");
        self.inner.delete(key, cond).await
    }
    /// TransactWriteItems is authorised per write (IAM has no action of its own for it).
    async fn transact(&self, writes: Vec<Write>) -> TableResult<()> {
        for w in &writes {
            self.record(match w {
                Write::Put { .. } => "dynamodb:PutItem",
                Write::Update { .. } => "dynamodb:UpdateItem",
                Write::Delete { .. } => "dynamodb:DeleteItem",
                Write::Check { .. } => "dynamodb:ConditionCheckItem",
            });
        }
        self.inner.transact(writes).await
    }
    async fn query(&self, query: Query) -> TableResult<Page> {
        self.record("dynamodb:Query");
        self.record(if query.index.is_some() {
            INDEX_QUERY
        } else {
            TABLE_QUERY
        });
        self.inner.query(query).await
    }
}

/// Local mode on a recording table; each request's store calls, sends and
/// published events are attributed to the function that served it.
struct Recorder {
    addr: std::net::SocketAddr,
    t: TestApp,
    table: Arc<RecordingTable>,
    /// Every event published (SNS Publish to EVENTS_TOPIC_ARN when deployed).
    events: Arc<RecordingEvents>,
    /// (METHOD, route template, function) of every mounted function.
    routes: Vec<(&'static str, &'static str, &'static str)>,
    /// function → (IAM action or secret) → the first step that needed it.
    seen: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// function → the event types it published.
    published: BTreeMap<&'static str, BTreeSet<&'static str>>,
    /// Every response: step, method, path, status, body.
    responses: Vec<(String, String, String, u16, Value)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Sent {
    status: u16,
    body: Value,
    /// `name=value` of every `Set-Cookie`.
    cookies: Vec<String>,
}

impl Sent {
    /// The value of the cookie `name` the response set.
    fn cookie(&self, name: &str) -> String {
        self.cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no cookie {name} in {:?}", self.cookies))
            .to_owned()
    }

    fn data(&self, field: &str) -> String {
        self.body["data"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no data.{field} in {}", self.body))
            .to_owned()
    }
}

impl Recorder {
    async fn start() -> Recorder {
        let table = Arc::new(RecordingTable {
            inner: MemoryTable::new(),
            actions: Mutex::new(Vec::new()),
        });
        let mut settings = testing::settings();
        settings.invite_url_template = Some("https://app.example.com/claim/{invite_id}".into());
        settings.oauth.google_client_ids = vec!["google-client".into()];
        settings.oauth.apple_client_ids = vec!["apple-client".into()];
        let events = Arc::new(RecordingEvents::default());
        let recorded: Arc<dyn nambari_core::ports::events::Events> = events.clone();
        let t = testing::app_built(table.clone(), settings, |app| {
            // Google and Apple sign-in run against a fake idToken verifier;
            // the integrator API's keys are hashed under their own pepper.
            app.with_oauth(Some(Arc::new(FakeIdTokens)))
                .with_api_key_pepper(Arc::new(Live::new(Pepper::new(vec![7; 32]).unwrap())))
                .with_events(recorded)
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(nambari_local::serve(t.app.clone(), listener, false));
        let routes = nambari_local::routes()
            .iter()
            .map(|r| (r.method, r.path, r.function))
            .collect();
        Recorder {
            addr,
            t,
            table,
            events,
            routes,
            seen: BTreeMap::new(),
            published: BTreeMap::new(),
            responses: Vec::new(),
            task,
        }
    }

    /// Sends one request (`step` names it in failure messages) and records
    /// what its function called.
    async fn send(
        &mut self,
        step: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Sent {
        // The function, and its route as openapi.yaml names it (`/sessions/{id}`).
        let path_only = path.split_once('?').map_or(path, |(p, _)| p);
        let (route, function) = self
            .routes
            .iter()
            .find(|(m, p, _)| *m == method && nambari_local::match_path(p, path_only).is_some())
            .map(|(_, p, f)| (*p, *f))
            .unwrap_or_else(|| panic!("{step}: no function serves {method} {path}"));
        self.table.taken();
        let sent_before = self.t.sender.messages().len();
        let invites_before = self.t.sender.invites.lock().unwrap().len();
        let notices_before = self.t.sender.notices().len();
        let events_before = self.events.events.lock().unwrap().len();

        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, payload) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let cookies: Vec<String> = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.trim().split(';').next().map(str::to_owned))
            .collect();
        let body: Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{step}: {e}: {payload}"));

        let seen = self.seen.entry(function).or_default();
        for action in self.table.taken() {
            seen.entry(action.to_owned()).or_insert_with(|| step.to_owned());
        }
        // Codes, then invites (a claim link, no code).
        let mut pipes: Vec<Pipe> = self.t.sender.messages()[sent_before..].iter().map(|m| m.pipe).collect();
        pipes.extend(
            self.t.sender.invites.lock().unwrap()[invites_before..]
                .iter()
                .map(|i| i.pipe),
        );
        pipes.extend(self.t.sender.notices()[notices_before..].iter().map(|n| n.pipe));
        for pipe in pipes {
            let what = match pipe {
                Pipe::Sms => "sns:Publish",
                Pipe::Email => "ses:SendEmail",
                Pipe::Whatsapp => "secret WHATSAPP_TOKEN",
            };
            seen.entry(what.to_owned()).or_insert_with(|| step.to_owned());
        }
        // Events are published before the response (emit awaits the port).
        for e in &self.events.events.lock().unwrap()[events_before..] {
            seen.entry(EVENTS_PUBLISH.to_owned()).or_insert_with(|| step.to_owned());
            self.published.entry(function).or_default().insert(e.kind.as_str());
        }
        self.responses.push((
            step.to_owned(),
            method.to_owned(),
            route.to_owned(),
            status,
            body.clone(),
        ));
        Sent { status, body, cookies }
    }

    async fn post(&mut self, step: &str, path: &str, body: Value) -> Sent {
        self.send(step, "POST", &format!("/api/v1{path}"), Some(body), &[])
            .await
    }

    /// A request with `Authorization: Bearer <access_token>` to `/api/v1<path>`.
    async fn authed(&mut self, step: &str, method: &str, path: &str, body: Option<Value>, access_token: &str) -> Sent {
        let auth = format!("Bearer {access_token}");
        self.send(
            step,
            method,
            &format!("/api/v1{path}"),
            body,
            &[("Authorization", &auth)],
        )
        .await
    }

    /// A request to `/api/v1<path>` with `auth` (`Bearer nmb_live_…`, an
    /// integrator's API key) as its `Authorization` header, and `extra` headers.
    async fn keyed(
        &mut self,
        step: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: &str,
        extra: &[(&str, &str)],
    ) -> Sent {
        let mut headers = vec![("Authorization", auth)];
        headers.extend_from_slice(extra);
        self.send(step, method, &format!("/api/v1{path}"), body, &headers).await
    }

    /// check → start → verify-otp for a user who finished onboarding: the
    /// verify response (tokens).
    async fn sign_in(&mut self, step: &str, phone: &str, device: &str) -> Sent {
        let (tt, code) = self.start_sign_in(step, phone, device, "SMS").await;
        let v = self
            .post(
                &format!("{step}: verify"),
                "/auth/verify-otp",
                json!({"tempToken": tt, "otp": code, "deviceName": "Pixel 8", "platform": "ANDROID"}),
            )
            .await;
        assert_eq!((v.status, &v.body["action"]), (200, &Value::Null), "{step}: {}", v.body);
        v
    }

    /// A checkToken for `phone` on `device`.
    async fn check(&mut self, step: &str, phone: &str, device: &str) -> String {
        let check = self
            .post(
                &format!("{step}: check"),
                "/auth/check",
                json!({"identifier": phone, "deviceId": device}),
            )
            .await;
        assert_eq!(check.status, 200, "{step}: {}", check.body);
        check.data("checkToken")
    }

    /// check → start over `channel`: the tempToken and the code sent.
    async fn start_sign_in(&mut self, step: &str, phone: &str, device: &str, channel: &str) -> (String, String) {
        let check = self
            .post(
                &format!("{step}: check"),
                "/auth/check",
                json!({"identifier": phone, "deviceId": device}),
            )
            .await;
        assert_eq!(check.status, 200, "{step}: {}", check.body);
        let start = self
            .post(
                &format!("{step}: start"),
                "/auth/passwordless-start",
                json!({"checkToken": check.data("checkToken"), "channel": channel, "deviceId": device}),
            )
            .await;
        assert_eq!(start.status, 200, "{step}: {}", start.body);
        (start.data("tempToken"), start.data("sandboxOtp"))
    }
}

/// Accepts `good:<sub>` as an idToken of subject `<sub>` (of either
/// provider) and refuses anything else, as a bad signature would be.
struct FakeIdTokens;

#[async_trait]
impl IdTokenVerifier for FakeIdTokens {
    async fn verify(
        &self,
        _provider: Provider,
        id_token: &str,
        _nonce: &str,
        _now: i64,
    ) -> Result<IdTokenClaims, IdTokenError> {
        match id_token.strip_prefix("good:") {
            Some(sub) if !sub.is_empty() => Ok(IdTokenClaims {
                sub: sub.to_owned(),
                email: None,
            }),
            _ => Err(IdTokenError::Invalid("not a test idToken")),
        }
    }
}

/// What a run through every function found.
struct Recorded {
    /// function → (IAM action or delivery secret) → the first step that needed it.
    seen: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// function → the event types it published.
    published: BTreeMap<&'static str, BTreeSet<&'static str>>,
    /// step, method, path, status, body.
    responses: Vec<(String, String, String, u16, Value)>,
}

/// Drives every function down each of its store paths, recording what
/// each needed and every response.
async fn record_every_path() -> Recorded {
    const PHONE: &str = "+255745051250";
    const FAILING: &str = "+254712345678";
    const RACED: &str = "+254711000111";
    const NEW: &str = "+255745051251";
    let mut r = Recorder::start().await;

    // Sign up: check → channels → start (claims an Idempotency-Key, then replays it).
    let check = r
        .post(
            "sign-up check",
            "/auth/check",
            json!({"identifier": PHONE, "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    let ct = check.data("checkToken");
    let ch = r
        .post(
            "channels",
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!(ch.status, 200, "{}", ch.body);
    let start_body = json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"});
    let start = r
        .send(
            "start (Idempotency-Key)",
            "POST",
            "/api/v1/auth/passwordless-start",
            Some(start_body.clone()),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let replay = r
        .send(
            "start (replayed)",
            "POST",
            "/api/v1/auth/passwordless-start",
            Some(start_body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    let tt = start.data("tempToken");

    // A resend inside the cooldown fails and releases its Idempotency-Key.
    let early = r
        .send(
            "resend in the cooldown (Idempotency-Key released)",
            "POST",
            "/api/v1/auth/resend-otp",
            Some(json!({"tempToken": tt})),
            &[("Idempotency-Key", "k-2")],
        )
        .await;
    assert_eq!(
        (early.status, early.body["code"].as_str()),
        (400, Some("RESEND_COOLDOWN")),
        "{}",
        early.body
    );
    let wrong = if start.data("sandboxOtp") == "000000" {
        "111111"
    } else {
        "000000"
    };
    let v = r
        .post("wrong code", "/auth/verify-otp", json!({"tempToken": tt, "otp": wrong}))
        .await;
    assert_eq!(
        (v.status, v.body["code"].as_str()),
        (403, Some("INVALID_OTP")),
        "{}",
        v.body
    );

    // Past the breaker cache (5 minutes): a resend in a fresh container reads the country's history.
    r.t.clock.advance(301);
    let resent = r
        .post(
            "resend (cold breaker cache)",
            "/auth/resend-otp",
            json!({"tempToken": tt}),
        )
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let v = r
        .post(
            "verify (new user)",
            "/auth/verify-otp",
            json!({"tempToken": resent.data("tempToken"), "otp": resent.data("sandboxOtp"), "platform": "WEB"}),
        )
        .await;
    assert_eq!(
        (v.status, v.body["action"].as_str()),
        (200, Some("COLLECT_PRIMARY")),
        "{}",
        v.body
    );
    let p = r
        .post(
            "onboarding",
            "/auth/onboarding/primary",
            json!({"onboardingToken": v.data("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);

    // Refresh (a web session: the token is in its cookie), then reuse of
    // the rotated token (revokes the family).
    let old = p.cookie("nambari_rt");
    let fresh = r
        .post("refresh", "/auth/token/refresh", json!({"refreshToken": old}))
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let reuse = r
        .post("refresh reuse", "/auth/token/refresh", json!({"refreshToken": old}))
        .await;
    assert_eq!(
        (reuse.status, reuse.body["code"].as_str()),
        (401, Some("TOKEN_REUSED")),
        "{}",
        reuse.body
    );

    // Sign in again over WhatsApp (with a resend), then revoke.
    r.t.clock.advance(3600);
    let (tt, _) = r.start_sign_in("sign-in (WhatsApp)", PHONE, "dev-2", "WHATSAPP").await;
    r.t.clock.advance(61);
    let resent = r
        .post("resend (WhatsApp)", "/auth/resend-otp", json!({"tempToken": tt}))
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let v = r
        .post(
            "verify (sign-in)",
            "/auth/verify-otp",
            json!({"tempToken": resent.data("tempToken"), "otp": resent.data("sandboxOtp")}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let used = r
        .post(
            "verify, code used",
            "/auth/verify-otp",
            json!({"tempToken": resent.data("tempToken"), "otp": resent.data("sandboxOtp")}),
        )
        .await;
    assert_eq!(
        (used.status, used.body["code"].as_str()),
        (403, Some("TOKEN_ALREADY_USED")),
        "{}",
        used.body
    );
    let rv = r
        .post(
            "revoke",
            "/auth/token/revoke",
            json!({"refreshToken": v.data("refreshToken")}),
        )
        .await;
    assert_eq!(rv.status, 200, "{}", rv.body);

    // A send that fails on every channel gives the checkToken back.
    r.t.sender.fail(Pipe::Sms);
    let check = r
        .post(
            "failing check",
            "/auth/check",
            json!({"identifier": FAILING, "deviceId": "dev-3"}),
        )
        .await;
    let failed = r
        .post(
            "failing start",
            "/auth/passwordless-start",
            json!({"checkToken": check.data("checkToken"), "channel": "SMS", "deviceId": "dev-3"}),
        )
        .await;
    assert_eq!(
        (failed.status, failed.body["code"].as_str()),
        (502, Some("DELIVERY_FAILED")),
        "{}",
        failed.body
    );
    r.t.sender.failing.lock().unwrap().clear();

    // Two devices sign up one new number: the one that checked first but
    // verifies last finds the user the other created.
    let first = r
        .post(
            "race: first check",
            "/auth/check",
            json!({"identifier": RACED, "deviceId": "dev-a"}),
        )
        .await;
    let (tt_b, code_b) = r.start_sign_in("race: second device", RACED, "dev-b", "SMS").await;
    let v = r
        .post(
            "race: second verify",
            "/auth/verify-otp",
            json!({"tempToken": tt_b, "otp": code_b}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let start_a = r
        .post(
            "race: first start",
            "/auth/passwordless-start",
            json!({"checkToken": first.data("checkToken"), "channel": "SMS", "deviceId": "dev-a"}),
        )
        .await;
    assert_eq!(start_a.status, 200, "{}", start_a.body);
    let v = r
        .post(
            "race: first verify (user exists by now)",
            "/auth/verify-otp",
            json!({"tempToken": start_a.data("tempToken"), "otp": start_a.data("sandboxOtp")}),
        )
        .await;
    assert_eq!(
        (v.status, v.body["action"].as_str()),
        (200, Some("COLLECT_PRIMARY")),
        "{}",
        v.body
    );

    // A code by email, for a user with a verified email.
    let db = Db::new(r.table.clone());
    let user = db
        .user_by_phone(PHONE, r.t.app.now())
        .await
        .unwrap()
        .expect("the user signed up");
    r.table
        .inner
        .update(
            &user_key(&user.id),
            vec![
                Update::set("email", "asha@example.com"),
                Update::set("email_verified", true),
            ],
            None,
        )
        .await
        .unwrap();
    r.t.clock.advance(3600);
    let (tt, _) = r.start_sign_in("sign-in (email)", PHONE, "dev-4", "EMAIL").await;
    r.t.clock.advance(61);
    let resent = r
        .post("resend (email)", "/auth/resend-otp", json!({"tempToken": tt}))
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);

    // ------------------------------------------------ the signed-in account
    // Asha signs in with a code; her access token is fresh (the code was
    // proved just now).
    r.t.clock.advance(3600);
    let v = r.sign_in("account: sign-in", PHONE, "dev-5").await;
    let at = v.data("accessToken");
    let dev5 = v.data("deviceToken");
    let none = r
        .send("me without a token", "GET", "/api/v1/account/me", None, &[])
        .await;
    assert_eq!(
        (none.status, none.body["code"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "{}",
        none.body
    );
    let me = r.authed("me", "GET", "/account/me", None, &at).await;
    assert_eq!(me.status, 200, "{}", me.body);

    // Secondary onboarding: a username (then another, freeing the first),
    // interests, bio and picture (set, then cleared).
    let u = r
        .authed(
            "username",
            "PUT",
            "/account/username",
            Some(json!({"username": "Asha"})),
            &at,
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let u = r
        .authed(
            "username renamed",
            "PUT",
            "/account/username",
            Some(json!({"username": "asha_m"})),
            &at,
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let bad = r
        .authed(
            "username invalid",
            "PUT",
            "/account/username",
            Some(json!({"username": "a b"})),
            &at,
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let i = r
        .authed(
            "interests",
            "PUT",
            "/account/interests",
            Some(json!({"interests": ["music", "Football", "football"]})),
            &at,
        )
        .await;
    assert_eq!(i.status, 200, "{}", i.body);
    let bad = r
        .authed(
            "interests not a list",
            "PUT",
            "/account/interests",
            Some(json!({"interests": "music"})),
            &at,
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let b = r
        .authed(
            "bio",
            "PUT",
            "/account/bio",
            Some(json!({"bio": "Hello from Dar"})),
            &at,
        )
        .await;
    assert_eq!(b.status, 200, "{}", b.body);
    let b = r
        .authed("bio cleared", "PUT", "/account/bio", Some(json!({"bio": ""})), &at)
        .await;
    assert_eq!(b.status, 200, "{}", b.body);
    let pic = json!({"profilePic": "https://cdn.example.com/u/asha.jpg"});
    let p = r
        .authed("profile picture", "PUT", "/account/profile-pic", Some(pic), &at)
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let bad = r
        .authed(
            "profile picture over http",
            "PUT",
            "/account/profile-pic",
            Some(json!({"profilePic": "http://cdn.example.com/a.jpg"})),
            &at,
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let me = r.authed("me (after onboarding)", "GET", "/account/me", None, &at).await;
    assert_eq!(me.status, 200, "{}", me.body);

    // Password: set (first time: the sign-in's code is fresh), a mismatch, two
    // wrong current passwords (counted on the lock), then changed.
    let set = json!({"newPassword": "correct horse 1", "confirmPassword": "correct horse 1"});
    let s = r
        .authed("password set", "PUT", "/account/password", Some(set), &at)
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let mismatch = json!({"newPassword": "correct horse 2", "confirmPassword": "correct horse 3"});
    let s = r
        .authed("password mismatch", "PUT", "/account/password", Some(mismatch), &at)
        .await;
    assert_eq!(
        (s.status, s.body["code"].as_str()),
        (400, Some("PASSWORD_MISMATCH")),
        "{}",
        s.body
    );
    for step in ["password change, wrong current", "password change, wrong current again"] {
        let wrong = json!({"newPassword": "correct horse 2", "currentPassword": "not my password"});
        let s = r.authed(step, "PUT", "/account/password", Some(wrong), &at).await;
        assert_eq!(
            (s.status, s.body["code"].as_str()),
            (403, Some("INVALID_CREDENTIALS")),
            "{}",
            s.body
        );
    }
    let change = json!({"newPassword": "correct horse 2", "currentPassword": "correct horse 1"});
    let s = r
        .authed("password changed", "PUT", "/account/password", Some(change), &at)
        .await;
    assert_eq!(s.status, 200, "{}", s.body);

    // PIN: a trivial one, set, a wrong current PIN, changed.
    let s = r
        .authed("PIN too easy", "PUT", "/account/pin", Some(json!({"pin": "1234"})), &at)
        .await;
    assert_eq!(s.status, 422, "{}", s.body);
    let s = r
        .authed("PIN set", "PUT", "/account/pin", Some(json!({"pin": "1357"})), &at)
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let s = r
        .authed(
            "PIN change, wrong current",
            "PUT",
            "/account/pin",
            Some(json!({"pin": "8046", "currentPin": "9999"})),
            &at,
        )
        .await;
    assert_eq!(s.status, 403, "{}", s.body);
    let s = r
        .authed(
            "PIN changed",
            "PUT",
            "/account/pin",
            Some(json!({"pin": "8046", "currentPin": "1357"})),
            &at,
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);

    // Step-up: granted; a wrong PIN (new lock), another (counted), granted
    // again (the lock cleared); then wrong until locked, and locked even
    // with the right PIN.
    let up = |pin: &str| Some(json!({"pin": pin, "scope": "payments:send"}));
    let s = r.authed("step-up", "POST", "/auth/step-up", up("8046"), &at).await;
    assert_eq!(s.status, 200, "{}", s.body);
    for step in ["step-up, wrong PIN", "step-up, wrong PIN again"] {
        let s = r.authed(step, "POST", "/auth/step-up", up("2468"), &at).await;
        assert_eq!(
            (s.status, s.body["code"].as_str()),
            (403, Some("INVALID_CREDENTIALS")),
            "{}",
            s.body
        );
    }
    let s = r
        .authed("step-up after wrong PINs", "POST", "/auth/step-up", up("8046"), &at)
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let mut last = None;
    for n in 0..5 {
        let s = r
            .authed(
                &format!("step-up, wrong PIN {n}"),
                "POST",
                "/auth/step-up",
                up("2468"),
                &at,
            )
            .await;
        last = s.body["code"].as_str().map(str::to_owned);
    }
    assert_eq!(last.as_deref(), Some("ACCOUNT_LOCKED"));
    let s = r
        .authed("step-up while locked", "POST", "/auth/step-up", up("8046"), &at)
        .await;
    assert_eq!(
        (s.status, s.body["code"].as_str()),
        (403, Some("ACCOUNT_LOCKED")),
        "{}",
        s.body
    );
    r.t.clock.advance(901);
    // Past FRESH_AUTH_SECONDS: changing the PIN now needs the current one.
    let s = r
        .authed(
            "PIN change, stale session",
            "PUT",
            "/account/pin",
            Some(json!({"pin": "9753"})),
            &at,
        )
        .await;
    assert_eq!(s.status, 422, "{}", s.body);

    // ------------------------------------------------ password sign-in
    // Wrong passwords until locked, then a known device signs in, an
    // unknown one verifies with a code.
    let ct = r.check("password sign-in", PHONE, "dev-5").await;
    let login = |ct: &str, password: &str, device: &str, device_token: Option<&str>| json!({"checkToken": ct, "password": password, "deviceId": device, "deviceToken": device_token, "deviceName": "Pixel 8", "platform": "ANDROID"});
    let mut last = None;
    for n in 0..5 {
        let s = r
            .post(
                &format!("password sign-in, wrong password {n}"),
                "/auth/login/password",
                login(&ct, "wrong horse", "dev-5", Some(&dev5)),
            )
            .await;
        assert_eq!(s.status, 403, "{}", s.body);
        last = s.body["code"].as_str().map(str::to_owned);
    }
    assert_eq!(last.as_deref(), Some("ACCOUNT_LOCKED"));
    let s = r
        .post(
            "password sign-in while locked",
            "/auth/login/password",
            login(&ct, "correct horse 2", "dev-5", Some(&dev5)),
        )
        .await;
    assert_eq!(
        (s.status, s.body["code"].as_str()),
        (403, Some("ACCOUNT_LOCKED")),
        "{}",
        s.body
    );
    r.t.clock.advance(901);
    let ct = r.check("password sign-in (known device)", PHONE, "dev-5").await;
    let s = r
        .post(
            "password sign-in (known device)",
            "/auth/login/password",
            login(&ct, "correct horse 2", "dev-5", Some(&dev5)),
        )
        .await;
    assert_eq!((s.status, &s.body["action"]), (200, &Value::Null), "{}", s.body);
    let dev5 = s.data("deviceToken");
    let again = r
        .post(
            "password sign-in, checkToken reused",
            "/auth/login/password",
            login(&ct, "correct horse 2", "dev-5", Some(&dev5)),
        )
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (403, Some("TOKEN_ALREADY_USED")),
        "{}",
        again.body
    );
    let ct = r.check("password sign-in (unknown device)", PHONE, "dev-6").await;
    let s = r
        .post(
            "password sign-in (unknown device)",
            "/auth/login/password",
            login(&ct, "correct horse 2", "dev-6", None),
        )
        .await;
    assert_eq!(
        (s.status, s.body["action"].as_str()),
        (200, Some("VERIFY_DEVICE")),
        "{}",
        s.body
    );
    let dvt = s.data("deviceVerificationToken");
    let code = s.data("sandboxOtp");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let d = r
        .post(
            "device verify, wrong code",
            "/account/device/verify",
            json!({"deviceVerificationToken": dvt, "otp": wrong}),
        )
        .await;
    assert_eq!(
        (d.status, d.body["code"].as_str()),
        (403, Some("INVALID_OTP")),
        "{}",
        d.body
    );
    let d = r
        .post(
            "device verify",
            "/account/device/verify",
            json!({"deviceVerificationToken": dvt, "otp": code}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    // A code that cannot take an attempt (used) is read again to say why.
    let d = r
        .post(
            "device verify, code used",
            "/account/device/verify",
            json!({"deviceVerificationToken": dvt, "otp": code}),
        )
        .await;
    assert_eq!(
        (d.status, d.body["code"].as_str()),
        (403, Some("TOKEN_ALREADY_USED")),
        "{}",
        d.body
    );
    // A failed send on an unknown device gives the checkToken back.
    r.t.sender.fail(Pipe::Sms);
    let ct = r.check("password sign-in (send fails)", PHONE, "dev-7").await;
    let s = r
        .post(
            "password sign-in (send fails)",
            "/auth/login/password",
            login(&ct, "correct horse 2", "dev-7", None),
        )
        .await;
    assert_eq!(s.status, 502, "{}", s.body);
    r.t.sender.failing.lock().unwrap().clear();
    r.t.clock.advance(301);

    // ------------------------------------------------ forgot password
    let ct = r.check("forgot password", PHONE, "dev-5").await;
    let f = r
        .post(
            "forgot: initiate",
            "/auth/password/forgot/initiate",
            json!({"checkToken": ct, "deviceId": "dev-5"}),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.body);
    let (tt, code) = (f.data("tempToken"), f.data("sandboxOtp"));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let v = r
        .post(
            "forgot: wrong code",
            "/auth/password/forgot/verify-otp",
            json!({"tempToken": tt, "otp": wrong}),
        )
        .await;
    assert_eq!(v.status, 403, "{}", v.body);
    let v = r
        .post(
            "forgot: verify code",
            "/auth/password/forgot/verify-otp",
            json!({"tempToken": tt, "otp": code}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let used = r
        .post(
            "forgot: code used",
            "/auth/password/forgot/verify-otp",
            json!({"tempToken": tt, "otp": code}),
        )
        .await;
    assert_eq!(
        (used.status, used.body["code"].as_str()),
        (403, Some("TOKEN_ALREADY_USED")),
        "{}",
        used.body
    );
    let rt = v.data("resetToken");
    let reset = |rt: &str, confirm: &str| json!({"resetToken": rt, "newPassword": "battery staple", "confirmPassword": confirm});
    let x = r
        .post(
            "forgot: reset, mismatch",
            "/auth/password/forgot/reset",
            reset(&rt, "battery stapler"),
        )
        .await;
    assert_eq!(x.status, 400, "{}", x.body);
    let x = r
        .post(
            "forgot: reset",
            "/auth/password/forgot/reset",
            reset(&rt, "battery staple"),
        )
        .await;
    assert_eq!(x.status, 200, "{}", x.body);
    let again = r
        .post(
            "forgot: reset token reused",
            "/auth/password/forgot/reset",
            reset(&rt, "battery staple"),
        )
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (403, Some("TOKEN_ALREADY_USED")),
        "{}",
        again.body
    );
    // The reset ended every earlier session.
    let old = r
        .authed("me after the reset (old token)", "GET", "/account/me", None, &at)
        .await;
    assert_eq!(
        (old.status, old.body["code"].as_str()),
        (401, Some("INVALID_TOKEN")),
        "{}",
        old.body
    );
    let at = x.data("accessToken");
    let dev5 = x.data("deviceToken");
    r.t.sender.fail(Pipe::Sms);
    let ct = r.check("forgot (send fails)", PHONE, "dev-5").await;
    let f = r
        .post(
            "forgot: initiate (send fails)",
            "/auth/password/forgot/initiate",
            json!({"checkToken": ct, "deviceId": "dev-5"}),
        )
        .await;
    assert_eq!(f.status, 502, "{}", f.body);
    r.t.sender.failing.lock().unwrap().clear();

    // ------------------------------------------------ Google sign-in
    // The reset's session proved no fresh code: linking takes the PIN, and
    // a nonce issued for it.
    let nonce = |sent: &Sent| sent.data("nonce");
    let n = r.authed("oauth nonce", "POST", "/account/oauth/nonce", None, &at).await;
    assert_eq!(n.status, 200, "{}", n.body);
    let l = r
        .authed(
            "link Google, no fresh proof",
            "POST",
            "/account/oauth/link",
            Some(json!({"provider": "GOOGLE", "idToken": "good:g-asha", "nonce": nonce(&n)})),
            &at,
        )
        .await;
    assert_eq!(
        (l.status, l.body["code"].as_str()),
        (403, Some("FACTOR_REQUIRED")),
        "{}",
        l.body
    );
    let l = r
        .authed(
            "link Google, bad idToken",
            "POST",
            "/account/oauth/link",
            Some(json!({"provider": "GOOGLE", "idToken": "forged", "nonce": nonce(&n), "pin": "8046"})),
            &at,
        )
        .await;
    assert_eq!(l.status, 403, "{}", l.body);
    let l = r
        .authed(
            "link Google, wrong PIN",
            "POST",
            "/account/oauth/link",
            Some(json!({"provider": "GOOGLE", "idToken": "good:g-asha", "nonce": nonce(&n), "pin": "2468"})),
            &at,
        )
        .await;
    assert_eq!(
        (l.status, l.body["code"].as_str()),
        (403, Some("INVALID_CREDENTIALS")),
        "{}",
        l.body
    );
    let l = r
        .authed(
            "link Google",
            "POST",
            "/account/oauth/link",
            Some(json!({"provider": "GOOGLE", "idToken": "good:g-asha", "nonce": nonce(&n), "pin": "8046"})),
            &at,
        )
        .await;
    assert_eq!(l.status, 200, "{}", l.body);
    let ct = r.check("Google sign-in", PHONE, "dev-5").await;
    let oauth = |ct: &str, provider: &str, id_token: &str, device: &str, device_token: Option<&str>| json!({"checkToken": ct, "provider": provider, "idToken": id_token, "deviceId": device, "deviceToken": device_token, "state": "s-1"});
    let o = r
        .post(
            "Google sign-in, another account",
            "/auth/login/oauth",
            oauth(&ct, "GOOGLE", "good:g-other", "dev-5", Some(&dev5)),
        )
        .await;
    assert_eq!(o.status, 403, "{}", o.body);
    let o = r
        .post(
            "Apple sign-in, not linked",
            "/auth/login/oauth",
            oauth(&ct, "APPLE", "good:a-asha", "dev-5", Some(&dev5)),
        )
        .await;
    assert_eq!(
        (o.status, o.body["code"].as_str()),
        (403, Some("OAUTH_NOT_LINKED")),
        "{}",
        o.body
    );
    let o = r
        .post(
            "Google sign-in",
            "/auth/login/oauth",
            oauth(&ct, "GOOGLE", "good:g-asha", "dev-5", Some(&dev5)),
        )
        .await;
    assert_eq!((o.status, &o.body["action"]), (200, &Value::Null), "{}", o.body);
    let ct = r.check("Google sign-in (unknown device)", PHONE, "dev-8").await;
    let o = r
        .post(
            "Google sign-in (unknown device)",
            "/auth/login/oauth",
            oauth(&ct, "GOOGLE", "good:g-asha", "dev-8", None),
        )
        .await;
    assert_eq!(
        (o.status, o.body["action"].as_str()),
        (200, Some("VERIFY_DEVICE")),
        "{}",
        o.body
    );
    r.t.sender.fail(Pipe::Sms);
    let ct = r
        .check("Google sign-in (unknown device, send fails)", PHONE, "dev-8")
        .await;
    let o = r
        .post(
            "Google sign-in (unknown device, send fails)",
            "/auth/login/oauth",
            oauth(&ct, "GOOGLE", "good:g-asha", "dev-8", None),
        )
        .await;
    assert_eq!(o.status, 502, "{}", o.body);
    r.t.sender.failing.lock().unwrap().clear();

    // ------------------------------------------------ one-step flow
    // A new user (Neo), then Asha (existing), then a failed send.
    r.t.clock.advance(301); // a cold breaker cache: the trigger reads the country's history
    let trigger = json!({"phone": NEW, "device_id": "dev-9"});
    let tr = r
        .send(
            "one-step trigger (Idempotency-Key)",
            "POST",
            "/api/v1/auth/otp/trigger",
            Some(trigger.clone()),
            &[("Idempotency-Key", "k-9")],
        )
        .await;
    assert_eq!(tr.status, 200, "{}", tr.body);
    let replay = r
        .send(
            "one-step trigger (replayed)",
            "POST",
            "/api/v1/auth/otp/trigger",
            Some(trigger),
            &[("Idempotency-Key", "k-9")],
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    let code = tr.data("sandbox_otp");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let ov = r
        .post(
            "one-step verify, wrong code",
            "/auth/otp/verify",
            json!({"phone": NEW, "otp": wrong}),
        )
        .await;
    assert_eq!(
        (ov.status, ov.body["code"].as_str()),
        (403, Some("INVALID_OTP")),
        "{}",
        ov.body
    );
    let ov = r
        .post(
            "one-step verify (new user)",
            "/auth/otp/verify",
            json!({"phone": NEW, "otp": code, "device_id": "dev-9", "platform": "IOS"}),
        )
        .await;
    assert_eq!(
        (ov.status, &ov.body["data"]["is_new_user"]),
        (200, &json!(true)),
        "{}",
        ov.body
    );
    let neo = ov.data("access_token");
    let used = r
        .post(
            "one-step verify, code used",
            "/auth/otp/verify",
            json!({"phone": NEW, "otp": code}),
        )
        .await;
    assert_eq!(used.status, 403, "{}", used.body);
    let tr = r
        .post(
            "one-step trigger (existing user)",
            "/auth/otp/trigger",
            json!({"phone": PHONE, "device_id": "dev-5"}),
        )
        .await;
    assert_eq!(tr.status, 200, "{}", tr.body);
    let ov = r
        .post(
            "one-step verify (existing user)",
            "/auth/otp/verify",
            json!({"phone": PHONE, "otp": tr.data("sandbox_otp")}),
        )
        .await;
    assert_eq!(
        (ov.status, &ov.body["data"]["is_new_user"]),
        (200, &json!(false)),
        "{}",
        ov.body
    );
    let bad = r
        .post(
            "one-step trigger, bad phone",
            "/auth/otp/trigger",
            json!({"phone": "12"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    r.t.sender.fail(Pipe::Sms);
    let failed = r
        .send(
            "one-step trigger (send fails, Idempotency-Key released)",
            "POST",
            "/api/v1/auth/otp/trigger",
            Some(json!({"phone": FAILING})),
            &[("Idempotency-Key", "k-10")],
        )
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    r.t.sender.failing.lock().unwrap().clear();

    // What belongs to one user is refused to another.
    let taken = r
        .authed(
            "username taken",
            "PUT",
            "/account/username",
            Some(json!({"username": "ASHA_M"})),
            &neo,
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    let n = r
        .authed("oauth nonce (Neo)", "POST", "/account/oauth/nonce", None, &neo)
        .await;
    let taken = r
        .authed(
            "link Google, linked to another user",
            "POST",
            "/account/oauth/link",
            Some(json!({"provider": "GOOGLE", "idToken": "good:g-asha", "nonce": n.data("nonce")})),
            &neo,
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);

    // ------------------------------------------------ email
    // Neo adds an email (a wrong code first), then replaces it.
    let e = r
        .authed(
            "email start",
            "POST",
            "/account/email/start",
            Some(json!({"email": "neo@example.com"})),
            &neo,
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    let (tt, code) = (e.data("tempToken"), e.data("sandboxOtp"));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let ev = r
        .authed(
            "email verify, wrong code",
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": tt, "otp": wrong})),
            &neo,
        )
        .await;
    assert_eq!(ev.status, 403, "{}", ev.body);
    let ev = r
        .authed(
            "email verify",
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": tt, "otp": code})),
            &neo,
        )
        .await;
    assert_eq!(ev.status, 200, "{}", ev.body);
    let used = r
        .authed(
            "email verify, code used",
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": tt, "otp": code})),
            &neo,
        )
        .await;
    assert_eq!(used.status, 403, "{}", used.body);
    let e = r
        .authed(
            "email start (another address)",
            "POST",
            "/account/email/start",
            Some(json!({"email": "neo@example.org"})),
            &neo,
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    let ev = r
        .authed(
            "email verify (replaces the first)",
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": e.data("tempToken"), "otp": e.data("sandboxOtp")})),
            &neo,
        )
        .await;
    assert_eq!(ev.status, 200, "{}", ev.body);
    let taken = r
        .authed(
            "email start, another user's address",
            "POST",
            "/account/email/start",
            Some(json!({"email": "Neo@Example.org"})),
            &at,
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    r.t.sender.fail(Pipe::Email);
    let failed = r
        .authed(
            "email start (send fails)",
            "POST",
            "/account/email/start",
            Some(json!({"email": "neo@example.net"})),
            &neo,
        )
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    r.t.sender.failing.lock().unwrap().clear();

    // ------------------------------------------------ unlink, sessions, logout
    let un = r
        .authed("unlink Google", "DELETE", "/account/oauth/google", None, &at)
        .await;
    assert_eq!(un.status, 200, "{}", un.body);
    let un = r
        .authed("unlink Google again", "DELETE", "/account/oauth/GOOGLE", None, &at)
        .await;
    assert_eq!(
        (un.status, un.body["code"].as_str()),
        (403, Some("OAUTH_NOT_LINKED")),
        "{}",
        un.body
    );
    let list = r.authed("sessions", "GET", "/account/sessions", None, &at).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let other = list.body["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == json!(false))
        .and_then(|s| s["id"].as_str())
        .expect("another session (the Google sign-in)")
        .to_owned();
    let rv = r
        .authed(
            "revoke another session",
            "DELETE",
            &format!("/account/sessions/{other}"),
            None,
            &at,
        )
        .await;
    assert_eq!(rv.status, 200, "{}", rv.body);
    let rv = r
        .authed(
            "revoke it again",
            "DELETE",
            &format!("/account/sessions/{other}"),
            None,
            &at,
        )
        .await;
    assert_eq!(rv.status, 404, "{}", rv.body);
    let rv = r
        .authed(
            "revoke, not a session id",
            "DELETE",
            "/account/sessions/nope",
            None,
            &at,
        )
        .await;
    assert_eq!(rv.status, 422, "{}", rv.body);
    let lo = r.authed("logout", "POST", "/auth/logout", None, &at).await;
    assert_eq!(lo.status, 200, "{}", lo.body);
    let lo = r.authed("logout again", "POST", "/auth/logout", None, &at).await;
    assert_eq!(lo.status, 401, "{}", lo.body);
    let gone = r
        .authed("sessions after logout", "GET", "/account/sessions", None, &at)
        .await;
    assert_eq!(gone.status, 401, "{}", gone.body);

    // ------------------------------------------------ PIN recovery
    // Asha (verified email, PIN 8046): codes to the email and the phone, a
    // wrong email code, then both right (every session ends; notices).
    r.t.clock.advance(301);
    let v = r.sign_in("PIN recovery: sign-in", PHONE, "dev-5").await;
    let at = v.data("accessToken");
    r.t.sender.fail(Pipe::Email);
    let failed = r
        .authed(
            "PIN recovery start (email fails)",
            "POST",
            "/account/pin/recovery/start",
            None,
            &at,
        )
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    r.t.sender.failing.lock().unwrap().clear();
    let rs = r
        .authed("PIN recovery start", "POST", "/account/pin/recovery/start", None, &at)
        .await;
    assert_eq!(rs.status, 200, "{}", rs.body);
    let recover = |email: &str| json!({"recoveryToken": rs.data("recoveryToken"), "emailOtp": email, "phoneOtp": rs.data("sandboxPhoneOtp"), "pin": "5082"});
    let rv = r
        .authed(
            "PIN recovery verify, wrong email code",
            "POST",
            "/account/pin/recovery/verify",
            Some(recover(&wrong_code(&rs.data("sandboxEmailOtp")))),
            &at,
        )
        .await;
    assert_eq!(
        (rv.status, rv.body["code"].as_str()),
        (403, Some("INVALID_OTP")),
        "{}",
        rv.body
    );
    let rv = r
        .authed(
            "PIN recovery verify",
            "POST",
            "/account/pin/recovery/verify",
            Some(recover(&rs.data("sandboxEmailOtp"))),
            &at,
        )
        .await;
    assert_eq!(rv.status, 200, "{}", rv.body);
    let fresh = rv.data("accessToken");
    let used = r
        .authed(
            "PIN recovery verify, codes used",
            "POST",
            "/account/pin/recovery/verify",
            Some(recover(&rs.data("sandboxEmailOtp"))),
            &fresh,
        )
        .await;
    assert_eq!(used.status, 403, "{}", used.body);
    let nopin = r
        .authed(
            "PIN recovery start, no PIN",
            "POST",
            "/account/pin/recovery/start",
            None,
            &neo,
        )
        .await;
    assert_eq!(
        (nopin.status, nopin.body["code"].as_str()),
        (403, Some("PIN_NOT_SET")),
        "{}",
        nopin.body
    );

    integrator_paths(&mut r, PHONE).await;

    let jwks = r.send("jwks", "GET", "/.well-known/jwks.json", None, &[]).await;
    assert_eq!(jwks.status, 200);
    Recorded {
        seen: std::mem::take(&mut r.seen),
        published: std::mem::take(&mut r.published),
        responses: std::mem::take(&mut r.responses),
    }
}

/// A code other than `code` of the same length.
fn wrong_code(code: &str) -> String {
    let first = if code.starts_with('1') { '2' } else { '1' };
    std::iter::repeat_n(first, code.len()).collect()
}

/// The integrator API (`Authorization: Bearer nmb_live_…`, snake_case):
/// OTP sessions, user lookup, invites and their claim, step-up consume.
/// `phone` is a user who finished onboarding and whose PIN is 5082 (set by
/// the PIN recovery).
async fn integrator_paths(r: &mut Recorder, phone: &str) {
    const OTP_PHONE: &str = "+255745051253";
    const CONTACT: &str = "+255745051254";
    const INVITED: &str = "+255745051255";
    const INVITED_BY_SMS: &str = "+255745051256";
    const UNREACHABLE: &str = "+255745051257";
    const INVITED_SANDBOX: &str = "+255745051258";
    const OTP_EMAIL: &str = "kyc@example.com";
    // Keys are made by the admin command, not by an endpoint.
    let full = apikeys::create(&r.t.app, "shop", &[], false).await.unwrap();
    let full = format!("Bearer {}", apikeys::reveal(&full));
    let lookups = apikeys::create(&r.t.app, "lookups", &["users:read".to_owned()], false)
        .await
        .unwrap();
    let lookups = format!("Bearer {}", apikeys::reveal(&lookups));

    // Refused: no key, and a key without the scope.
    let no_key = r
        .send(
            "otp send without a key",
            "POST",
            "/api/v1/otp/send",
            Some(json!({"channels": ["sms"], "recipients": {"sms": OTP_PHONE}})),
            &[],
        )
        .await;
    assert_eq!(
        (no_key.status, no_key.body["code"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "{}",
        no_key.body
    );
    let scoped = r
        .keyed(
            "otp send, key without the otp scope",
            "POST",
            "/otp/send",
            Some(json!({"channels": ["sms"], "recipients": {"sms": OTP_PHONE}})),
            &lookups,
            &[],
        )
        .await;
    assert_eq!(
        (scoped.status, scoped.body["code"].as_str()),
        (403, Some("INSUFFICIENT_SCOPE")),
        "{}",
        scoped.body
    );

    // A live session over email and SMS (a cold breaker cache: the send
    // reads the country's history), replayed under its Idempotency-Key.
    r.t.clock.advance(301);
    let live = json!({"channels": ["email", "sms"], "recipients": {"email": OTP_EMAIL, "sms": OTP_PHONE},
        "config": {"otp_length": 6, "expiry_minutes": 10, "max_attempts": 3}, "metadata": {"purpose": "kyc"}});
    let s = r
        .keyed(
            "otp send (live, email+sms, Idempotency-Key)",
            "POST",
            "/otp/send",
            Some(live.clone()),
            &full,
            &[("Idempotency-Key", "k-20")],
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["data"]["channels"]["sms"]["status"], "SENT", "{}", s.body);
    let replay = r
        .keyed(
            "otp send (replayed)",
            "POST",
            "/otp/send",
            Some(live),
            &full,
            &[("Idempotency-Key", "k-20")],
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    let token = s.data("token");

    // A resend inside the 60 s cooldown fails and releases its key; after
    // it (a cold breaker cache again), every unverified channel gets a code.
    let early = r
        .keyed(
            "otp resend in the cooldown (Idempotency-Key released)",
            "POST",
            "/otp/resend",
            Some(json!({"token": token})),
            &full,
            &[("Idempotency-Key", "k-21")],
        )
        .await;
    assert_eq!(
        (early.status, early.body["code"].as_str()),
        (400, Some("RESEND_COOLDOWN")),
        "{}",
        early.body
    );
    r.t.clock.advance(301);
    let again = r
        .keyed(
            "otp resend (cold breaker cache)",
            "POST",
            "/otp/resend",
            Some(json!({"token": token})),
            &full,
            &[],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let sms = r.t.sender.last_code_to(OTP_PHONE).expect("an SMS code");
    let mail = r.t.sender.last_code_to(OTP_EMAIL).expect("an email code");

    // Verify: SMS (partial), a wrong email code, then the right one.
    let v = r
        .keyed(
            "otp verify (partial)",
            "POST",
            "/otp/verify",
            Some(json!({"token": token, "otps": {"sms": sms}})),
            &full,
            &[],
        )
        .await;
    assert_eq!((v.status, v.data("status")), (200, "PARTIAL".into()), "{}", v.body);
    let v = r
        .keyed(
            "otp verify, wrong code",
            "POST",
            "/otp/verify",
            Some(json!({"token": token, "otps": {"email": wrong_code(&mail)}})),
            &full,
            &[],
        )
        .await;
    assert_eq!(
        (v.status, v.body["data"]["results"]["email"].as_str()),
        (200, Some("INVALID")),
        "{}",
        v.body
    );
    let v = r
        .keyed(
            "otp verify (verified)",
            "POST",
            "/otp/verify",
            Some(json!({"token": token, "otps": {"email": mail}})),
            &full,
            &[],
        )
        .await;
    assert_eq!((v.status, v.data("status")), (200, "VERIFIED".into()), "{}", v.body);
    let v = r
        .keyed(
            "otp verify, unknown session",
            "POST",
            "/otp/verify",
            Some(json!({"token": "ots_nope", "otps": {"sms": sms}})),
            &full,
            &[],
        )
        .await;
    assert_eq!(v.status, 404, "{}", v.body);

    // add_contact: the verified number becomes a user (user.registered).
    let s = r
        .keyed(
            "otp send (add_contact)",
            "POST",
            "/otp/send",
            Some(json!({"channels": ["sms"], "recipients": {"sms": CONTACT}, "add_contact": true})),
            &full,
            &[],
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let code = r.t.sender.last_code_to(CONTACT).expect("an SMS code");
    let v = r
        .keyed(
            "otp verify (add_contact, new user)",
            "POST",
            "/otp/verify",
            Some(json!({"token": s.data("token"), "otps": {"sms": code}})),
            &full,
            &[],
        )
        .await;
    assert_eq!((v.status, v.data("status")), (200, "VERIFIED".into()), "{}", v.body);
    assert!(v.body["data"]["user"]["id"].is_string(), "{}", v.body);
    let contact_id = v.body["data"]["user"]["id"].as_str().unwrap().to_owned();

    // Sandbox: nothing sent, the codes come back.
    let s = r.keyed("otp send (sandbox_mode, email+sms)", "POST", "/otp/send", Some(json!({"channels": ["sms", "email"], "recipients": {"sms": OTP_PHONE, "email": OTP_EMAIL}, "sandbox_mode": true, "verification": "ANY"})), &full, &[]).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["data"]["channels"]["sms"]["status"], "SANDBOX", "{}", s.body);
    let sandbox_token = s.data("token");
    let bad = r
        .keyed(
            "otp send, bad body",
            "POST",
            "/otp/send",
            Some(json!({"channels": ["fax"], "config": {"otp_length": 12}})),
            &full,
            &[],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);

    // A live session whose resend reaches no channel keeps its earlier code.
    let s = r
        .keyed(
            "otp send (live, sms)",
            "POST",
            "/otp/send",
            Some(json!({"channels": ["sms"], "recipients": {"sms": UNREACHABLE}})),
            &full,
            &[],
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let unreachable_token = s.data("token");
    r.t.clock.advance(61);
    let resent = r
        .keyed(
            "otp resend (sandbox_mode)",
            "POST",
            "/otp/resend",
            Some(json!({"token": sandbox_token, "channels": ["sms"]})),
            &full,
            &[],
        )
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert!(
        resent.body["data"]["sandbox_otps"]["sms"].is_string(),
        "{}",
        resent.body
    );

    // Nothing delivered: a new session is removed again (its key released),
    // a resent one keeps its earlier code.
    r.t.sender.fail(Pipe::Sms);
    let failed = r
        .keyed(
            "otp send (send fails, Idempotency-Key released)",
            "POST",
            "/otp/send",
            Some(json!({"channels": ["sms"], "recipients": {"sms": OTP_PHONE}})),
            &full,
            &[("Idempotency-Key", "k-22")],
        )
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    let failed = r
        .keyed(
            "otp resend (send fails)",
            "POST",
            "/otp/resend",
            Some(json!({"token": unreachable_token})),
            &full,
            &[],
        )
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    r.t.sender.failing.lock().unwrap().clear();

    // The key's sessions: all, filtered, and page by page.
    let l = r.keyed("otp sessions", "GET", "/otp/sessions", None, &full, &[]).await;
    assert_eq!(l.status, 200, "{}", l.body);
    let l = r
        .keyed(
            "otp sessions, filtered",
            "GET",
            "/otp/sessions?status=VERIFIED&channel=email&sandbox=false",
            None,
            &full,
            &[],
        )
        .await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(
        l.body["data"]["sessions"].as_array().map(Vec::len),
        Some(1),
        "{}",
        l.body
    );
    let page = r
        .keyed(
            "otp sessions, first page",
            "GET",
            "/otp/sessions?limit=1",
            None,
            &full,
            &[],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cursor = page.data("next_cursor");
    let next = r
        .keyed(
            "otp sessions, next page",
            "GET",
            &format!("/otp/sessions?limit=1&cursor={cursor}"),
            None,
            &full,
            &[],
        )
        .await;
    assert_eq!(next.status, 200, "{}", next.body);
    let bad = r
        .keyed(
            "otp sessions, bad filter",
            "GET",
            "/otp/sessions?status=NOPE",
            None,
            &full,
            &[],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);

    // Users by id and by phone: found, not found, malformed.
    let u = r
        .keyed(
            "user by id",
            "GET",
            &format!("/users/{contact_id}"),
            None,
            &lookups,
            &[],
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let u = r
        .keyed(
            "user by id, not found",
            "GET",
            "/users/usr_0000000000000000000000",
            None,
            &lookups,
            &[],
        )
        .await;
    assert_eq!(u.status, 404, "{}", u.body);
    let u = r
        .keyed("user by id, not an id", "GET", "/users/nope", None, &lookups, &[])
        .await;
    assert_eq!(u.status, 422, "{}", u.body);
    let encoded = phone.replace('+', "%2B");
    let u = r
        .keyed(
            "user by phone",
            "GET",
            &format!("/users?phone_number={encoded}"),
            None,
            &lookups,
            &[],
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let u = r
        .keyed(
            "user by phone, not found",
            "GET",
            "/users?phone_number=%2B255745000001",
            None,
            &lookups,
            &[],
        )
        .await;
    assert_eq!(u.status, 404, "{}", u.body);
    let u = r
        .keyed(
            "user by phone, not E.164",
            "GET",
            "/users?phone_number=0745051250",
            None,
            &lookups,
            &[],
        )
        .await;
    assert_eq!(u.status, 422, "{}", u.body);

    // Invites: over WhatsApp (a cold breaker cache), over SMS when WhatsApp
    // fails, refused for a user, and undelivered.
    r.t.clock.advance(301);
    let i = r
        .keyed(
            "invite (WhatsApp)",
            "POST",
            "/invites",
            Some(json!({"phone_number": INVITED, "metadata": {"transfer": "t-1"}})),
            &full,
            &[],
        )
        .await;
    assert_eq!(
        (i.status, i.body["data"]["delivered_via"].as_str()),
        (200, Some("WHATSAPP")),
        "{}",
        i.body
    );
    r.t.sender.fail(Pipe::Whatsapp);
    let i = r
        .keyed(
            "invite (SMS fallback)",
            "POST",
            "/invites",
            Some(json!({"phone_number": INVITED_BY_SMS})),
            &full,
            &[],
        )
        .await;
    assert_eq!(
        (i.status, i.body["data"]["delivered_via"].as_str()),
        (200, Some("SMS")),
        "{}",
        i.body
    );
    let i = r
        .keyed(
            "invite repeated (the first stands, nothing sent)",
            "POST",
            "/invites",
            Some(json!({"phone_number": INVITED_BY_SMS})),
            &full,
            &[],
        )
        .await;
    assert_eq!(
        (i.status, i.body["data"]["delivered_via"].as_str()),
        (200, Some("SMS")),
        "{}",
        i.body
    );
    r.t.sender.fail(Pipe::Sms);
    let i = r
        .keyed(
            "invite (send fails)",
            "POST",
            "/invites",
            Some(json!({"phone_number": UNREACHABLE})),
            &full,
            &[],
        )
        .await;
    assert_eq!(i.status, 502, "{}", i.body);
    r.t.sender.failing.lock().unwrap().clear();
    let i = r
        .keyed(
            "invite (sandbox_mode)",
            "POST",
            "/invites",
            Some(json!({"phone_number": INVITED_SANDBOX, "sandbox_mode": true})),
            &full,
            &[],
        )
        .await;
    assert_eq!(
        (i.status, i.body["data"]["delivered_via"].as_str()),
        (200, Some("SANDBOX")),
        "{}",
        i.body
    );
    let i = r
        .keyed(
            "invite, already a user",
            "POST",
            "/invites",
            Some(json!({"phone_number": phone})),
            &full,
            &[],
        )
        .await;
    assert_eq!(i.status, 409, "{}", i.body);
    let i = r
        .keyed(
            "invite, key without the invites scope",
            "POST",
            "/invites",
            Some(json!({"phone_number": INVITED})),
            &lookups,
            &[],
        )
        .await;
    assert_eq!(i.status, 403, "{}", i.body);

    // The invited number signs up; onboarding claims the invite (invite.claimed).
    let (tt, code) = r.start_sign_in("invited sign-up", INVITED, "dev-30", "SMS").await;
    let v = r
        .post(
            "invited sign-up: verify",
            "/auth/verify-otp",
            json!({"tempToken": tt, "otp": code}),
        )
        .await;
    assert_eq!(
        (v.status, v.body["action"].as_str()),
        (200, Some("COLLECT_PRIMARY")),
        "{}",
        v.body
    );
    let before = r.events.of(nambari_core::ports::events::EventType::InviteClaimed).len();
    let p = r
        .post(
            "onboarding (claims an invite)",
            "/auth/onboarding/primary",
            json!({"onboardingToken": v.data("onboardingToken"), "firstName": "Baraka", "lastName": "Mushi", "birthDate": "1990-01-20"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        r.events.of(nambari_core::ports::events::EventType::InviteClaimed).len(),
        before + 1
    );

    // Step-up: the user's stepUpToken is consumed once.
    r.t.clock.advance(3600);
    let at = r
        .sign_in("step-up consume: sign-in", phone, "dev-31")
        .await
        .data("accessToken");
    let up = r
        .authed(
            "step-up (for the integrator)",
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "5082", "scope": "payments:send"})),
            &at,
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    let step_up = up.data("stepUpToken");
    let c = r
        .keyed(
            "step-up consume",
            "POST",
            "/step-up/consume",
            Some(json!({"token": step_up})),
            &full,
            &[],
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    let c = r
        .keyed(
            "step-up consume, reused",
            "POST",
            "/step-up/consume",
            Some(json!({"token": step_up})),
            &full,
            &[],
        )
        .await;
    assert_eq!(
        (c.status, c.body["code"].as_str()),
        (403, Some("TOKEN_ALREADY_USED")),
        "{}",
        c.body
    );
    let c = r
        .keyed(
            "step-up consume, not a step-up token",
            "POST",
            "/step-up/consume",
            Some(json!({"token": at})),
            &full,
            &[],
        )
        .await;
    assert_eq!(c.status, 403, "{}", c.body);
    let c = r
        .keyed(
            "step-up consume, key without the step_up scope",
            "POST",
            "/step-up/consume",
            Some(json!({"token": step_up})),
            &lookups,
            &[],
        )
        .await;
    assert_eq!(c.status, 403, "{}", c.body);
}

/// What the functions were seen to need: function → (IAM action, delivery
/// secret, [`INDEX_QUERY`] or [`TABLE_QUERY`]) → the first step that needed it.
type Seen<'a> = BTreeMap<&'a str, BTreeMap<String, String>>;

/// Whether a function's policy grants anything on the table's index.
fn grants_the_index(function: &Value) -> bool {
    let index_arn = json!({"Fn::Sub": "${Table.Arn}/index/gsi1"});
    statements(function)
        .iter()
        .any(|s| as_list(&s["Resource"]).contains(&index_arn))
}

/// Whether a function's policy grants `dynamodb:Query` on the table itself.
fn grants_table_query(function: &Value) -> bool {
    let table_arn = json!({"Fn::GetAtt": ["Table", "Arn"]});
    statements(function).iter().any(|s| {
        as_list(&s["Action"]).contains(&json!("dynamodb:Query")) && as_list(&s["Resource"]).contains(&table_arn)
    })
}

/// Every way what the functions were seen to need differs from what
/// `deploy/iam.json` (and, for the index, the template) grants them: a
/// need not granted, or a grant nothing needed. Empty when they agree.
pub fn usage_problems(crates: &[String], seen: &Seen, iam: &Value, template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in crates {
        let entry = &iam[krate.as_str()];
        let mut declared: BTreeSet<String> = entry["actions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(a, _)| a.clone())
            .filter(|a| a != "secretsmanager:GetSecretValue")
            .collect();
        // Delivery over WhatsApp needs the token, not an IAM action.
        for s in entry["secrets"].as_array().into_iter().flatten() {
            if s == "WHATSAPP_TOKEN" {
                declared.insert("secret WHATSAPP_TOKEN".into());
            }
        }
        let mut used: BTreeMap<String, String> = seen.get(krate.as_str()).cloned().unwrap_or_default();
        // Real senders (any function that may send) read the WhatsApp token
        // at cold start whenever the stage offers WHATSAPP, whether or not
        // this function ever sends over it (nambari_http::config::start_from_lookup).
        if ["sns:Publish", "ses:SendEmail"].iter().any(|a| declared.contains(*a)) {
            used.entry("secret WHATSAPP_TOKEN".into())
                .or_insert_with(|| "cold start: real senders, with CHANNELS offering WHATSAPP".into());
        }
        // The index is a resource of its own: granted exactly to the functions that query it;
        // and Query on the table exactly to those that query the table.
        let queried_index = used.remove(INDEX_QUERY);
        let queried_table = used.remove(TABLE_QUERY);
        let id = logical_id(krate);
        let function = template["Resources"].get(&id);
        let granted_index = function.is_some_and(grants_the_index);
        match (&queried_index, granted_index) {
            (Some(step), false) => problems.push(format!(
                "{krate}: queries the index gsi1 (at step {step:?}) but {id} is not granted it"
            )),
            (None, true) => problems.push(format!(
                "{krate}: {id} is granted the index gsi1, which no step queried"
            )),
            _ => {}
        }
        match (&queried_table, function.is_some_and(grants_table_query)) {
            (Some(step), false) => problems.push(format!(
                "{krate}: queries the table (at step {step:?}) but {id} may Query the index only"
            )),
            (None, true) if queried_index.is_some() => problems.push(format!(
                "{krate}: {id} may Query the table, but every step queried the index only"
            )),
            _ => {}
        }
        for (action, step) in &used {
            if !declared.contains(action) {
                problems.push(format!(
                    "{krate}: needs {action} (at step {step:?}) but deploy/iam.json does not grant it"
                ));
            }
        }
        for action in &declared {
            if !used.contains_key(action) {
                problems.push(format!("{krate}: deploy/iam.json grants {action}, which no step used"));
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_call_a_function_makes_is_granted_and_every_grant_is_used() {
    let seen = record_every_path().await.seen;
    let problems = usage_problems(&crate_names(), &seen, &iam(), &template());
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// One crate `a` that queries the table, as `deploy/iam.json`, the
/// template and the recorder would describe it.
fn usage_fixture() -> (Vec<String>, Value, Value) {
    let iam = json!({"a": {"actions": {"dynamodb:Query": "its items"}, "secrets": []}});
    let template = json!({"Resources": {"AFunction": {"Type": "AWS::Serverless::Function", "Properties": {
        "Policies": [{"Statement": [{"Sid": "Table", "Effect": "Allow", "Action": ["dynamodb:Query"],
            "Resource": [{"Fn::GetAtt": ["Table", "Arn"]}]}]}]}}}});
    (vec!["a".to_owned()], iam, template)
}

#[test]
fn the_usage_check_passes_when_needs_and_grants_agree() {
    let (crates, iam, template) = usage_fixture();
    let seen = Seen::from([("a", BTreeMap::from([("dynamodb:Query".to_owned(), "list".to_owned())]))]);
    assert_eq!(usage_problems(&crates, &seen, &iam, &template), Vec::<String>::new());
}

#[test]
fn a_query_on_the_index_without_its_grant_and_an_unused_index_grant_are_reported() {
    let (crates, iam, mut template) = usage_fixture();
    let on_index = BTreeMap::from([
        ("dynamodb:Query".to_owned(), "list".to_owned()),
        (TABLE_QUERY.to_owned(), "list".to_owned()),
        (INDEX_QUERY.to_owned(), "find".to_owned()),
    ]);
    let p = usage_problems(&crates, &Seen::from([("a", on_index)]), &iam, &template);
    assert_eq!(
        p,
        vec!["a: queries the index gsi1 (at step \"find\") but AFunction is not granted it".to_owned()]
    );
    template["Resources"]["AFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Fn::Sub": "${Table.Arn}/index/gsi1"}));
    let on_table = BTreeMap::from([
        ("dynamodb:Query".to_owned(), "list".to_owned()),
        (TABLE_QUERY.to_owned(), "list".to_owned()),
    ]);
    let p = usage_problems(&crates, &Seen::from([("a", on_table)]), &iam, &template);
    assert_eq!(
        p,
        vec!["a: AFunction is granted the index gsi1, which no step queried".to_owned()]
    );
}

#[test]
fn query_on_the_table_is_granted_exactly_to_the_functions_that_query_it() {
    let (crates, iam, mut template) = usage_fixture();
    // Only the index is queried, but the table may be queried too.
    template["Resources"]["AFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Fn::Sub": "${Table.Arn}/index/gsi1"}));
    let on_index = BTreeMap::from([
        ("dynamodb:Query".to_owned(), "find".to_owned()),
        (INDEX_QUERY.to_owned(), "find".to_owned()),
    ]);
    assert_eq!(
        usage_problems(&crates, &Seen::from([("a", on_index.clone())]), &iam, &template),
        vec!["a: AFunction may Query the table, but every step queried the index only".to_owned()]
    );
    // The index alone: agreed; then a query on the table is refused.
    template["Resources"]["AFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"] =
        json!([{"Fn::Sub": "${Table.Arn}/index/gsi1"}]);
    assert_eq!(
        usage_problems(&crates, &Seen::from([("a", on_index)]), &iam, &template),
        Vec::<String>::new()
    );
    let on_both = BTreeMap::from([
        ("dynamodb:Query".to_owned(), "list".to_owned()),
        (TABLE_QUERY.to_owned(), "list".to_owned()),
        (INDEX_QUERY.to_owned(), "find".to_owned()),
    ]);
    assert_eq!(
        usage_problems(&crates, &Seen::from([("a", on_both)]), &iam, &template),
        vec!["a: queries the table (at step \"list\") but AFunction may Query the index only".to_owned()]
    );
}

#[test]
fn a_function_with_real_senders_but_without_the_whatsapp_token_is_reported() {
    let (crates, _, template) = usage_fixture();
    let iam = json!({"a": {"actions": {"dynamodb:Query": "its items", "ses:SendEmail": "codes"}, "secrets": []}});
    let needs = BTreeMap::from([
        ("dynamodb:Query".to_owned(), "list".to_owned()),
        ("ses:SendEmail".to_owned(), "send".to_owned()),
    ]);
    let p = usage_problems(&crates, &Seen::from([("a", needs)]), &iam, &template);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_reported(&p, "a: needs secret WHATSAPP_TOKEN (at step \"cold start");
}

#[test]
fn a_published_event_needs_the_events_grant_and_the_grant_a_publish() {
    let (crates, mut iam, template) = usage_fixture();
    let publishes = BTreeMap::from([
        ("dynamodb:Query".to_owned(), "list".to_owned()),
        (EVENTS_PUBLISH.to_owned(), "revoke".to_owned()),
    ]);
    assert_eq!(
        usage_problems(&crates, &Seen::from([("a", publishes.clone())]), &iam, &template),
        vec![format!(
            "a: needs {EVENTS_PUBLISH} (at step \"revoke\") but deploy/iam.json does not grant it"
        )]
    );
    // Granted: nothing else is asked of it (events are not SMS: no real
    // senders, no WhatsApp token).
    iam["a"]["actions"][EVENTS_PUBLISH] = json!("session.revoked");
    assert_eq!(
        usage_problems(&crates, &Seen::from([("a", publishes)]), &iam, &template),
        Vec::<String>::new()
    );
    let quiet = BTreeMap::from([("dynamodb:Query".to_owned(), "list".to_owned())]);
    assert_eq!(
        usage_problems(&crates, &Seen::from([("a", quiet)]), &iam, &template),
        vec![format!(
            "a: deploy/iam.json grants {EVENTS_PUBLISH}, which no step used"
        )]
    );
}

#[tokio::test]
async fn every_event_the_functions_emit_is_published_on_some_path() {
    let published = record_every_path().await.published;
    let seen: BTreeSet<&str> = published.values().flatten().copied().collect();
    // user.blocked comes from the admin command, which is no function.
    let every = BTreeSet::from([
        "invite.claimed",
        "otp.verified",
        "session.reuse_detected",
        "session.revoked",
        "user.onboarded",
        "user.registered",
    ]);
    assert_eq!(seen, every, "{published:#?}");
}

// ------------------------------------------- responses against OpenAPI

/// `schema`, following a `$ref` into `doc`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let target = doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("openapi.yaml: dangling $ref {r}"));
            resolve(doc, target)
        }
        None => schema,
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// The problems of `v` against `schema`: the JSON Schema keywords
/// openapi.yaml uses (`$ref`, `type`, `const`, `enum`, `oneOf`, `anyOf`,
/// `allOf`, `required`, `properties`, `additionalProperties`, `items`,
/// `minItems`, `maxItems`, `minLength`). Formats and patterns are not checked.
fn schema_problems(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(c) = schema.get("const")
        && v != c
    {
        out.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types = as_list(t);
        if !types.iter().any(|t| t.as_str().is_some_and(|t| type_matches(t, v))) {
            out.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    let matching = |subs: &Value| -> usize {
        as_list(subs)
            .iter()
            .filter(|sub| {
                let mut e = Vec::new();
                schema_problems(doc, sub, v, at, &mut e);
                e.is_empty()
            })
            .count()
    };
    if let Some(subs) = schema.get("oneOf")
        && matching(subs) != 1
    {
        out.push(format!("{at}: {v} matches {} of oneOf, not one", matching(subs)));
    }
    if let Some(subs) = schema.get("anyOf")
        && matching(subs) == 0
    {
        out.push(format!("{at}: {v} matches none of anyOf"));
    }
    for sub in as_list(&schema["allOf"]) {
        schema_problems(doc, &sub, v, at, out);
    }
    if let Some(obj) = v.as_object() {
        for r in as_list(&schema["required"]) {
            if let Some(r) = r.as_str()
                && !obj.contains_key(r)
            {
                out.push(format!("{at}: no required field {r}"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, field) in obj {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => schema_problems(doc, sub, field, &here, out),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{at}: field {k} is not in the schema")),
                    Some(sub @ Value::Object(_)) => schema_problems(doc, sub, field, &here, out),
                    _ => {}
                },
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(sub) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                schema_problems(doc, sub, item, &format!("{at}[{i}]"), out);
            }
        }
        if schema["minItems"].as_u64().is_some_and(|n| (items.len() as u64) < n)
            || schema["maxItems"].as_u64().is_some_and(|n| (items.len() as u64) > n)
        {
            out.push(format!("{at}: {} items is out of bounds", items.len()));
        }
    }
    if let (Some(s), Some(n)) = (v.as_str(), schema["minLength"].as_u64())
        && (s.chars().count() as u64) < n
    {
        out.push(format!("{at}: shorter than {n}"));
    }
}

#[test]
fn the_schema_check_catches_a_renamed_a_missing_and_a_mistyped_field() {
    let doc = openapi();
    let schema = json!({"$ref": "#/components/schemas/RefreshResponse"});
    let good = json!({"success": true, "httpStatus": "OK", "message": "m", "action": null,
        "action_time": "2026-04-03T10:30:45", "data": {"accessToken": "a", "refreshToken": "r", "expiresIn": 3600}});
    let mut p = Vec::new();
    schema_problems(&doc, &schema, &good, "$", &mut p);
    assert_eq!(p, Vec::<String>::new());
    let mut bad = good.clone();
    bad["data"] = json!({"access_token": "a", "refreshToken": 5, "expiresIn": 3600});
    schema_problems(&doc, &schema, &bad, "$", &mut p);
    assert_reported(&p, "$.data: no required field accessToken");
    assert_reported(&p, "$.data: field access_token is not in the schema");
    assert_reported(&p, "$.data.refreshToken: 5 is not of type");
}

#[tokio::test]
async fn every_response_of_every_function_matches_its_openapi_schema() {
    let doc = openapi();
    let recorded = record_every_path().await;
    let mut problems = Vec::new();
    let mut statuses: BTreeSet<(String, u16)> = BTreeSet::new();
    for (step, method, path, status, body) in &recorded.responses {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        let response = resolve(&doc, &op["responses"][status.to_string()]);
        if response.is_null() {
            problems.push(format!("{step}: {method} {path} documents no {status} response"));
            continue;
        }
        let schema = &response["content"]["application/json"]["schema"];
        schema_problems(&doc, schema, body, &format!("{step} ({status})"), &mut problems);
        statuses.insert((format!("{method} {path}"), *status));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    // Each function answered, and some errors were among the answers.
    assert!(statuses.iter().any(|(_, s)| *s == 502) && statuses.iter().any(|(_, s)| *s == 401));
    assert_eq!(
        statuses.iter().map(|(r, _)| r.clone()).collect::<BTreeSet<_>>().len(),
        function_crates().len()
    );
}
