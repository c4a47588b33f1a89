//! Heartbeat ingest (SPEC section 3, docs/PROTOCOL.md): exactly-once by high-water mark, the
//! 200 answer, gzip, bad input (every case refused whole, nothing stored), agent credentials,
//! credentials in camera URLs, the time rules, and the writer's single step driven directly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{io::Write, sync::Arc};
use streamwatch::ingest::batch::{AgentLicense, IngestRequest, Outcome, Refused, write_batch};
use tokio::task::JoinSet;
use uuid::Uuid;

const INGEST: &str = "/api/v1/ingest/heartbeats";

/// `(accepted, duplicates)` of a 200 answer.
#[track_caller]
fn outcome(r: &TestResponse) -> (u64, u64) {
    r.assert_status(200);
    (
        r.body["accepted"].as_u64().unwrap(),
        r.body["duplicates"].as_u64().unwrap(),
    )
}

async fn stored_rows(app: &TestApp, instance: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM heartbeats WHERE instance_id = $1")
        .bind(instance)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn high_water(app: &TestApp, instance: Uuid) -> Option<i64> {
    sqlx::query_scalar("SELECT high_water_seq FROM agent_instances WHERE instance_id = $1")
        .bind(instance)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// Everything an ingest request could write: the account tables and the ingest tables.
async fn written(app: &TestApp) -> Vec<i64> {
    app.counts(&[ACCOUNT_TABLES.as_slice(), &INGEST_TABLES].concat())
        .await
}

fn timestamp(v: &Value) -> DateTime<Utc> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v} is not a timestamp: {e}"))
}

fn gzip(bytes: &[u8], level: Compression) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), level);
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// --- exactly-once ---------------------------------------------------------------------------

#[sqlx::test]
async fn a_batch_sent_again_is_acknowledged_as_duplicates_and_stored_once(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let (_, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let token = site.agent_token.as_str();

    // In sequence: the first answer stores, the retries are duplicates.
    let instance = Uuid::new_v4();
    let once = Batch::new(instance).seqs(1..=3).active_camera();
    let answers = [
        app.push(token, &once).await,
        app.push(token, &once).await,
        app.push(token, &once).await,
    ];
    let outcomes: Vec<(u64, u64)> = answers.iter().map(outcome).collect();
    assert_eq!(outcomes, [(3, 0), (0, 3), (0, 3)]);
    assert_eq!(stored_rows(&app, instance).await, 3);
    assert_eq!(app.count("heartbeats").await, 3);
    assert_eq!(high_water(&app, instance).await, Some(3));

    // Concurrently: whichever request commits first stores all three, the others none.
    let other = Uuid::new_v4();
    let same = Batch::new(other).seqs(1..=3).active_camera();
    let mut pushes = JoinSet::new();
    for _ in 0..3 {
        let (app, token, same) = (app.clone(), site.agent_token.clone(), same.clone());
        pushes.spawn(async move { outcome(&app.push(&token, &same).await) });
    }
    let (mut accepted, mut duplicates) = (0, 0);
    while let Some(answer) = pushes.join_next().await {
        let (a, d) = answer.unwrap();
        accepted += a;
        duplicates += d;
    }
    assert_eq!((accepted, duplicates), (3, 6), "three copies, stored once");
    assert_eq!(stored_rows(&app, other).await, 3);
    assert_eq!(high_water(&app, other).await, Some(3));

    // Overlapping the first instance's mark (3): 2 and 3 are duplicates, 4 and 5 new.
    let overlap = app
        .push(token, &Batch::new(instance).seqs(2..=5).active_camera())
        .await;
    assert_eq!(outcome(&overlap), (2, 2));
    assert_eq!(stored_rows(&app, instance).await, 5);
    assert_eq!(high_water(&app, instance).await, Some(5));
    let per_seq: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT seq, count(*) FROM heartbeats WHERE instance_id = $1 GROUP BY seq ORDER BY seq",
    )
    .bind(instance)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(per_seq, [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]);
}

#[sqlx::test]
async fn an_agent_that_restarts_with_a_new_instance_id_starts_a_new_sequence_space(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let (before, after) = (Uuid::new_v4(), Uuid::new_v4());

    let r = app
        .push(
            &site.agent_token,
            &Batch::new(before).seqs(1..=3).active_camera(),
        )
        .await;
    assert_eq!(outcome(&r), (3, 0));
    // A reinstall: new state directory, new instance id, seq from 1 again.
    let r = app
        .push(&site.agent_token, &Batch::new(after).seq(1).active_camera())
        .await;
    assert_eq!(
        outcome(&r),
        (1, 0),
        "seq 1 of a new instance is not a duplicate"
    );
    assert_eq!(high_water(&app, before).await, Some(3));
    assert_eq!(high_water(&app, after).await, Some(1));

    let status = app.license_status(&tenant.owner_token, &site.id).await;
    let mut agents: Vec<String> = status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["instance_id"].as_str().unwrap().to_owned())
        .collect();
    agents.sort();
    let mut expected = vec![before.to_string(), after.to_string()];
    expected.sort();
    assert_eq!(agents, expected);
}

// --- the 200 answer and the transport --------------------------------------------------------

#[sqlx::test]
async fn the_answer_says_what_was_stored_how_often_to_report_and_the_server_time(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;

    let before = Utc::now();
    let r = app
        .push(
            &site.agent_token,
            &Batch::new(Uuid::new_v4()).seqs(1..=2).active_camera(),
        )
        .await;
    let after = Utc::now();
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let mut keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accepted",
            "duplicates",
            "next_interval_seconds",
            "server_time"
        ]
    );
    assert_eq!(outcome(&r), (2, 0));
    assert_eq!(
        r.body["next_interval_seconds"], 60,
        "min(60, 600 / 3) for the default check interval"
    );
    let server_time = timestamp(&r.body["server_time"]);
    assert!(
        before <= server_time && server_time <= after,
        "{before} <= {server_time} <= {after}"
    );

    // A license checked every minute asks for a report every 20 s.
    let fast = app
        .create_site_with(
            &tenant.owner_token,
            json!({"key": "LIC-FAST", "name": "Fast", "check_interval_seconds": 60}),
        )
        .await;
    let r = app
        .push(&fast.agent_token, &Batch::one_active_camera())
        .await;
    assert_eq!(outcome(&r), (1, 0));
    assert_eq!(r.body["next_interval_seconds"], 20);
}

#[sqlx::test]
async fn a_gzipped_batch_is_accepted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let instance = Uuid::new_v4();
    let body = serde_json::to_vec(&Batch::new(instance).seqs(1..=3).active_camera()).unwrap();

    let req = app
        .client
        .post(format!("{}{INGEST}", app.address))
        .bearer_auth(&site.agent_token)
        .header("Streamwatch-Protocol", "1")
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(&body, Compression::default()));
    let r = app.send(req).await;
    assert_eq!(outcome(&r), (3, 0));
    assert_eq!(stored_rows(&app, instance).await, 3);
}

#[sqlx::test]
async fn a_batch_over_the_management_apis_64_kib_but_under_1_mib_is_accepted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let instance = Uuid::new_v4();
    // 500 heartbeats of 4 cameras: several hundred KiB of plain JSON.
    let big = Batch::new(instance)
        .anonymous()
        .seqs(1..=500)
        .cameras((0..4).map(|i| (format!("camera-{i}"), Camera::active())));
    let size = serde_json::to_vec(&big).unwrap().len();
    assert!(
        (64 * 1024..1024 * 1024).contains(&size),
        "the body is {size} bytes"
    );

    let r = app.push(&site.agent_token, &big).await;
    assert_eq!(outcome(&r), (500, 0));
    assert_eq!(stored_rows(&app, instance).await, 500);
}

// --- bad input ------------------------------------------------------------------------------

/// What a bad-input case sends.
enum Body {
    /// A JSON document, as `application/json`.
    Json(Value),
    /// Bytes as they are, with this `Content-Type` and `Content-Encoding` (none when `None`).
    Raw {
        content_type: &'static str,
        encoding: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

struct Case {
    what: &'static str,
    body: Body,
    /// The `Streamwatch-Protocol` header.
    protocol: &'static str,
    status: u16,
    /// Exactly the pointers the answer's `errors` must name (in any order).
    pointers: Vec<String>,
}

fn case(what: &'static str, body: Value, status: u16, pointers: &[&str]) -> Case {
    Case {
        what,
        body: Body::Json(body),
        protocol: "1",
        status,
        pointers: pointers.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn raw(
    what: &'static str,
    content_type: &'static str,
    encoding: Option<&'static str>,
    bytes: Vec<u8>,
    status: u16,
) -> Case {
    Case {
        what,
        body: Body::Raw {
            content_type,
            encoding,
            bytes,
        },
        protocol: "1",
        status,
        pointers: vec![],
    }
}

/// A valid batch of one heartbeat whose one camera is `camera`.
fn with_camera(id: &str, camera: &Value) -> Value {
    Batch::new(Uuid::new_v4())
        .anonymous()
        .seq(1)
        .camera(id, camera.clone())
        .to_json()
}

fn bad_input_cases() -> Vec<Case> {
    let instance = Uuid::new_v4();
    let valid = Batch::new(instance).seq(1).active_camera().to_json();
    let valid_bytes = serde_json::to_vec(&valid).unwrap();
    let hb = |seq: u64| Heartbeat::new(seq).to_json();
    let long_id = "c".repeat(129);
    let long_id_pointer = format!("/heartbeats/0/cameras/{long_id}");
    let many_cameras: serde_json::Map<String, Value> = (0..257)
        .map(|i| (format!("c{i}"), json!({"status": "running"})))
        .collect();
    // 20 MiB of spaces in a string: about 20 KiB gzipped.
    let bomb = {
        let mut doc = serde_json::to_vec(
            &json!({"agent": {"instance_id": instance, "hostname": "HOST"},
            "heartbeats": [hb(1)]}),
        )
        .unwrap();
        let at = doc.windows(4).position(|w| w == b"HOST").unwrap();
        doc.splice(at..at + 4, std::iter::repeat_n(b' ', 20 * 1024 * 1024));
        let zipped = gzip(&doc, Compression::best());
        assert!(zipped.len() < 1024 * 1024, "the bomb is small on the wire");
        zipped
    };
    // Over 1 MiB on the wire, valid JSON otherwise.
    let oversized = {
        let padding = "x".repeat(1024 * 1024);
        serde_json::to_vec(
            &json!({"agent": {"instance_id": instance, "hostname": padding},
            "heartbeats": [hb(1)]}),
        )
        .unwrap()
    };
    let oversized_gzip = gzip(&oversized, Compression::none());

    let mut cases = vec![
        raw(
            "malformed JSON",
            "application/json",
            None,
            b"{\"agent\": ".to_vec(),
            400,
        ),
        case("not an object", json!([1, 2, 3]), 422, &[""]),
        case("no agent", json!({"heartbeats": [hb(1)]}), 422, &["/agent"]),
        case(
            "an instance id that is not a UUID",
            json!({"agent": {"instance_id": "site-7"}, "heartbeats": [hb(1)]}),
            422,
            &["/agent/instance_id"],
        ),
        case(
            "no heartbeats",
            json!({"agent": {"instance_id": instance}, "heartbeats": []}),
            422,
            &["/heartbeats"],
        ),
        case(
            "501 heartbeats",
            json!({"agent": {"instance_id": instance}, "heartbeats": (1..=501).map(hb).collect::<Vec<_>>()}),
            422,
            &["/heartbeats"],
        ),
        case(
            "257 cameras in one heartbeat",
            json!({"agent": {"instance_id": instance},
                   "heartbeats": [{"seq": 1, "observed_at": Utc::now(), "cameras": many_cameras}]}),
            422,
            &["/heartbeats/0/cameras"],
        ),
        Case {
            pointers: vec![long_id_pointer],
            ..case(
                "a camera id of 129 characters",
                with_camera(&long_id, &json!({"status": "running"})),
                422,
                &[],
            )
        },
        case(
            "a camera id with characters outside [A-Za-z0-9._-]",
            with_camera("bad id!", &json!({"status": "running"})),
            422,
            &["/heartbeats/0/cameras/bad id!"],
        ),
        case(
            "a camera id with a slash, escaped in the pointer",
            with_camera("a/b", &json!({"status": "running"})),
            422,
            &["/heartbeats/0/cameras/a~1b"],
        ),
        case(
            "a picture with its measures out of range and a time far in the future",
            with_camera(
                "camera-1",
                &json!({"status": "running", "picture": {"state": "frozen",
                    "since": "2999-01-01T00:00:00Z", "checked_at": "2026-12-03T10:00:00Z",
                    "luma_mean": 300.0, "change_pct": -5.0}}),
            ),
            422,
            &[
                "/heartbeats/0/cameras/camera-1/picture/since",
                "/heartbeats/0/cameras/camera-1/picture/luma_mean",
                "/heartbeats/0/cameras/camera-1/picture/change_pct",
            ],
        ),
        case(
            "a picture without its state and times",
            with_camera(
                "camera-1",
                &json!({"status": "running", "picture": {"luma_mean": 3.0}}),
            ),
            422,
            &[
                "/heartbeats/0/cameras/camera-1/picture/state",
                "/heartbeats/0/cameras/camera-1/picture/since",
                "/heartbeats/0/cameras/camera-1/picture/checked_at",
            ],
        ),
        case(
            "an unknown camera status",
            with_camera("camera-1", &json!({"status": "dancing"})),
            422,
            &["/heartbeats/0/cameras/camera-1/status"],
        ),
        case(
            "health 101",
            with_camera("camera-1", &json!({"status": "running", "health": 101})),
            422,
            &["/heartbeats/0/cameras/camera-1/health"],
        ),
        case(
            "a string where a number belongs",
            with_camera(
                "camera-1",
                &json!({"status": "running", "received_fps": "fast"}),
            ),
            422,
            &["/heartbeats/0/cameras/camera-1/received_fps"],
        ),
        case(
            "observed_at that is not a timestamp",
            json!({"agent": {"instance_id": instance},
                   "heartbeats": [{"seq": 1, "observed_at": "yesterday", "cameras": {}}]}),
            422,
            &["/heartbeats/0/observed_at"],
        ),
        case(
            "a valid heartbeat together with an invalid one",
            json!({"agent": {"instance_id": instance},
                   "heartbeats": [valid["heartbeats"][0].clone(),
                                  {"seq": 2, "observed_at": Utc::now(), "cameras": {"camera-1": {"status": "dancing"}}}]}),
            422,
            &["/heartbeats/1/cameras/camera-1/status"],
        ),
        case(
            "many bad fields at once, all reported",
            json!({"agent": {"instance_id": "nope"},
                   "heartbeats": [{"seq": -1, "observed_at": "yesterday",
                                   "cameras": {"camera-1": {"status": "running", "health": 101, "is_live": "yes"}}},
                                  {"observed_at": Utc::now(), "cameras": []}]}),
            422,
            &[
                "/agent/instance_id",
                "/heartbeats/0/seq",
                "/heartbeats/0/observed_at",
                "/heartbeats/0/cameras/camera-1/health",
                "/heartbeats/0/cameras/camera-1/is_live",
                "/heartbeats/1/seq",
                "/heartbeats/1/cameras",
            ],
        ),
        raw(
            "a Content-Type that is not JSON",
            "text/plain",
            None,
            valid_bytes.clone(),
            415,
        ),
        raw(
            "an unsupported Content-Encoding",
            "application/json",
            Some("br"),
            valid_bytes.clone(),
            415,
        ),
        raw(
            "a gzip body that is not gzip",
            "application/json",
            Some("gzip"),
            valid_bytes,
            400,
        ),
        raw(
            "a body over 1 MiB",
            "application/json",
            None,
            oversized,
            413,
        ),
        raw(
            "a gzipped body over 1 MiB on the wire",
            "application/json",
            Some("gzip"),
            oversized_gzip,
            413,
        ),
        raw(
            "a gzip bomb: 20 MiB decompressed from a small body",
            "application/json",
            Some("gzip"),
            bomb,
            413,
        ),
    ];
    cases.push(Case {
        protocol: "99",
        ..case(
            "a protocol version the server does not speak",
            valid,
            400,
            &[],
        )
    });
    cases
}

/// Sends one case and checks its answer, and that nothing was written.
async fn refuse(app: &TestApp, agent_token: &str, case: Case) {
    let Case {
        what,
        body,
        protocol,
        status,
        mut pointers,
    } = case;
    let before = written(app).await;
    let req = app
        .client
        .post(format!("{}{INGEST}", app.address))
        .bearer_auth(agent_token)
        .header("Streamwatch-Protocol", protocol);
    let req = match body {
        Body::Json(v) => req.json(&v),
        Body::Raw {
            content_type,
            encoding,
            bytes,
        } => {
            let req = req.header("Content-Type", content_type).body(bytes);
            match encoding {
                Some(e) => req.header("Content-Encoding", e),
                None => req,
            }
        }
    };
    let r = app.send(req).await;
    assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}: {}",
        r.text
    );
    assert_eq!(r.body["status"], status, "{what}: {}", r.text);
    let mut got = r.pointers();
    got.sort();
    pointers.sort();
    assert_eq!(got, pointers, "{what}: {}", r.text);
    assert_eq!(written(app).await, before, "{what}: nothing is written");
}

#[sqlx::test]
async fn bad_input_is_refused_whole_with_every_bad_field_and_nothing_is_stored(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let (_, site) = app.create_tenant_with_site("acme", "LIC-acme").await;

    // Each case runs as its own task, so that one failing case (a contract violation panics
    // inside `send`) does not hide the others: all failures are listed at the end.
    let mut failures = Vec::new();
    for case in bad_input_cases() {
        let what = case.what;
        let (app, token) = (app.clone(), site.agent_token.clone());
        if let Err(e) = tokio::spawn(async move { refuse(&app, &token, case).await }).await {
            failures.push(format!("{what}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// --- credentials ----------------------------------------------------------------------------

#[sqlx::test]
async fn only_a_live_agent_token_of_an_active_tenant_may_push(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let body = Batch::one_active_camera();

    // Prepared first, so that the comparisons below see only the pushes.
    let (_, api_key) = app.create_api_key(&tenant.owner_token, "admin").await;
    let (revoked_id, revoked) = app.create_agent_token(&tenant.owner_token, &site.id).await;
    app.delete(
        &format!("/api/v1/licenses/{}/agent-tokens/{revoked_id}", site.id),
        &tenant.owner_token,
    )
    .await
    .assert_status(204);
    let doomed = app.create_license(&tenant.owner_token, "LIC-DOOMED").await;
    let doomed_id = doomed["id"].as_str().unwrap();
    let (_, doomed_token) = app.create_agent_token(&tenant.owner_token, doomed_id).await;
    app.delete(
        &format!("/api/v1/licenses/{doomed_id}"),
        &tenant.owner_token,
    )
    .await
    .assert_status(204);
    let (suspended_tenant, suspended) = app
        .create_tenant_with_site("suspended", "LIC-suspended")
        .await;
    app.patch(
        &format!("/api/v1/admin/tenants/{}", suspended_tenant.id),
        ADMIN_TOKEN,
        json!({"suspended": true}),
    )
    .await
    .assert_status(200);
    let random = format!("swa_{}{}", Uuid::new_v4().simple(), "AbCdEfGhIjK");

    let cases: [(&str, Option<&str>, u16); 7] = [
        ("no token", None, 401),
        (
            "a user's access token (JWT)",
            Some(&tenant.owner_token),
            401,
        ),
        ("an API key", Some(&api_key), 401),
        ("a random swa_ token", Some(&random), 401),
        ("a revoked agent token", Some(&revoked), 401),
        ("the token of a deleted license", Some(&doomed_token), 401),
        (
            "the token of a suspended tenant's license",
            Some(&suspended.agent_token),
            403,
        ),
    ];
    for (what, token, status) in cases {
        let before = written(&app).await;
        let mut req = app
            .client
            .post(format!("{}{INGEST}", app.address))
            .header("Streamwatch-Protocol", "1")
            .json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let r = app.send(req).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text);
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        if status == 401 {
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer")),
                "{what}: WWW-Authenticate {:?}",
                r.header("www-authenticate")
            );
        }
        assert_eq!(written(&app).await, before, "{what}: nothing is stored");
    }

    // The live token still works, so the refusals above were about the credentials.
    let r = app.push(&site.agent_token, &body).await;
    assert_eq!(outcome(&r), (1, 0));
}

#[sqlx::test]
async fn credentials_in_camera_urls_are_stripped_before_anything_is_stored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let camera = Camera::active().with(json!({"url": "rtsp://admin:s3cret@10.0.0.5/stream1"}));
    let body = Batch::one_camera(camera).anonymous();

    let r = app.push(&site.agent_token, &body).await;
    assert_eq!(outcome(&r), (1, 0));

    let status = app.license_status(&tenant.owner_token, &site.id).await;
    assert_eq!(
        status["cameras"][0]["url"], "rtsp://10.0.0.5/stream1",
        "{status}"
    );
    assert!(!status.to_string().contains("s3cret"), "{status}");
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM agent_instances WHERE cameras::text LIKE '%s3cret%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "the password is not stored");
}

// --- time -----------------------------------------------------------------------------------

async fn last_activity(app: &TestApp, owner: &str, site: &TestSite) -> (DateTime<Utc>, Value) {
    let status = app.license_status(owner, &site.id).await;
    (timestamp(&status["last_activity_at"]), status)
}

#[sqlx::test]
async fn a_heartbeat_from_the_future_counts_at_receive_time(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let ahead = Utc::now() + Duration::hours(1);
    let body = Batch::new(Uuid::new_v4())
        .anonymous()
        .seq(1)
        .observed_at(ahead)
        .active_camera();

    let before = Utc::now();
    let r = app.push(&site.agent_token, &body).await;
    let after = Utc::now();
    assert_eq!(outcome(&r), (1, 0));

    let (activity, status) = last_activity(&app, &tenant.owner_token, &site).await;
    assert!(
        before <= activity && activity <= after,
        "counted at receive time: {before} <= {activity} <= {after}"
    );
    assert_eq!(
        status["agents"][0]["clock_warning"], true,
        "an agent clock an hour ahead is shown: {status}"
    );
}

#[sqlx::test]
async fn a_replayed_heartbeat_counts_at_the_time_it_was_observed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let now = Utc::now();
    let observed = now - Duration::minutes(30);
    let body = Batch::new(Uuid::new_v4())
        .anonymous()
        .sent_at(now)
        .seq(1)
        .observed_at(observed)
        .active_camera();

    let r = app.push(&site.agent_token, &body).await;
    assert_eq!(outcome(&r), (1, 0));

    let (activity, status) = last_activity(&app, &tenant.owner_token, &site).await;
    // Corrected by the agent's clock offset (sent_at against receive time), which is the
    // request's own latency here: well under a few seconds.
    let slack = Duration::seconds(5);
    assert!(
        observed - slack <= activity && activity <= observed + slack,
        "counted about 30 min ago ({observed}), not at receive time: {activity}"
    );
    assert_eq!(status["agents"][0]["clock_warning"], false, "{status}");
}

// --- the writer's single step ---------------------------------------------------------------

fn request(
    license: AgentLicense,
    instance: Uuid,
    seqs: std::ops::RangeInclusive<u64>,
) -> IngestRequest {
    IngestRequest {
        license,
        token_id: None,
        batch: serde_json::from_value(Batch::new(instance).seqs(seqs).active_camera().to_json())
            .unwrap(),
        received_at: Utc::now(),
    }
}

#[sqlx::test]
async fn a_batch_with_a_license_deleted_after_authentication_fails_whole_and_stores_nothing_of_it(
    pool: PgPool,
) {
    // A request authenticated a moment before its license was deleted reaches the writer with
    // a license that is gone. Its batch fails as a whole (the writer then retries the others
    // one by one) and no history row is left without its license.
    let app = TestApp::spawn(pool).await;
    let gone = app.create_tenant_with_site("gone", "LIC-gone").await;
    let kept = app.create_tenant_with_site("kept", "LIC-kept").await;
    let license = |(tenant, site): &(TestTenant, TestSite)| AgentLicense {
        tenant_id: tenant.id.parse().unwrap(),
        license_id: site.id.parse().unwrap(),
    };
    let (instance_gone, instance_kept) = (Uuid::new_v4(), Uuid::new_v4());
    write_batch(
        &app.pool,
        &[&request(license(&gone), instance_gone, 1..=2)],
        8,
    )
    .await
    .unwrap();
    app.delete(
        &format!("/api/v1/licenses/{}", gone.1.id),
        &gone.0.owner_token,
    )
    .await
    .assert_status(204);

    let history_before = stored_rows(&app, instance_gone).await;
    let mut late = request(license(&gone), instance_gone, 3..=4);
    // Without cameras, so that no foreign key of `camera_state` refuses it. The writer's
    // license check refuses it (the placeholder row's foreign key would as well; the test
    // holds the outcome, not which of the two).
    for hb in &mut late.batch.heartbeats {
        hb.cameras.clear();
    }
    let other = request(license(&kept), instance_kept, 1..=2);
    assert!(write_batch(&app.pool, &[&late, &other], 8).await.is_err());
    assert_eq!(stored_rows(&app, instance_gone).await, history_before);
    assert_eq!(stored_rows(&app, instance_kept).await, 0);

    // Alone, the other license's request goes through.
    let outcomes = write_batch(&app.pool, &[&other], 8).await.unwrap();
    assert_eq!(outcomes[0].unwrap().accepted, 2);
    assert_eq!(stored_rows(&app, instance_kept).await, 2);
    let rollup: (i32, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as("SELECT instances, activity_newest FROM licenses WHERE id = $1::uuid")
            .bind(&kept.1.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(rollup.0, 1);
    assert!(rollup.1.is_some());
}

#[sqlx::test]
async fn the_writer_applies_two_requests_of_one_instance_in_one_transaction_in_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let license = AgentLicense {
        tenant_id: tenant.id.parse().unwrap(),
        license_id: site.id.parse().unwrap(),
    };
    let instance = Uuid::new_v4();
    let (first, second) = (
        request(license, instance, 1..=3),
        request(license, instance, 2..=5),
    );

    let outcomes = write_batch(&app.pool, &[&first, &second], 8).await.unwrap();
    assert_eq!(
        outcomes,
        [
            Ok(Outcome {
                accepted: 3,
                duplicates: 0,
                check_interval_seconds: None,
            }),
            Ok(Outcome {
                accepted: 2,
                duplicates: 2,
                check_interval_seconds: None,
            }),
        ],
        "the second request sees the first one's mark"
    );
    assert_eq!(high_water(&app, instance).await, Some(5));
    assert_eq!(stored_rows(&app, instance).await, 5);
    let heartbeats_total: i64 =
        sqlx::query_scalar("SELECT heartbeats_total FROM agent_instances WHERE instance_id = $1")
            .bind(instance)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(heartbeats_total, 5);

    // The same two again: all duplicates, nothing more stored.
    let outcomes = write_batch(&app.pool, &[&first, &second], 8).await.unwrap();
    assert_eq!(
        outcomes,
        [
            Ok(Outcome {
                accepted: 0,
                duplicates: 3,
                check_interval_seconds: None,
            }),
            Ok(Outcome {
                accepted: 0,
                duplicates: 4,
                check_interval_seconds: None,
            }),
        ]
    );
    assert_eq!(high_water(&app, instance).await, Some(5));
    assert_eq!(stored_rows(&app, instance).await, 5);
}

#[sqlx::test]
async fn the_writer_refuses_a_token_revoked_or_a_tenant_suspended_after_authentication_and_writes_the_rest(
    pool: PgPool,
) {
    // A replica whose token cache has not yet heard of a revocation lets the request in; the
    // writer reads the token again in the transaction that would store it, so nothing of it is
    // stored and the answer is 401 (403 for a suspended tenant). The batch's other requests
    // are written, each answered with its license's current check interval.
    let app = TestApp::spawn(pool).await;
    let (revoked_t, revoked_s) = app.create_tenant_with_site("revoked", "LIC-R").await;
    let (suspended_t, suspended_s) = app.create_tenant_with_site("suspended", "LIC-S").await;
    let (kept_t, kept_s) = app.create_tenant_with_site("kept", "LIC-K").await;
    let with_token = |(tenant, site): (&TestTenant, &TestSite), token: &str, instance: Uuid| {
        let mut r = request(
            AgentLicense {
                tenant_id: tenant.id.parse().unwrap(),
                license_id: site.id.parse().unwrap(),
            },
            instance,
            1..=2,
        );
        r.token_id = Some(token.parse().unwrap());
        r
    };
    let (revoked_id, _) = app
        .create_agent_token(&revoked_t.owner_token, &revoked_s.id)
        .await;
    let (suspended_id, _) = app
        .create_agent_token(&suspended_t.owner_token, &suspended_s.id)
        .await;
    let (kept_id, _) = app
        .create_agent_token(&kept_t.owner_token, &kept_s.id)
        .await;
    app.delete(
        &format!(
            "/api/v1/licenses/{}/agent-tokens/{revoked_id}",
            revoked_s.id
        ),
        &revoked_t.owner_token,
    )
    .await
    .assert_status(204);
    app.patch(
        &format!("/api/v1/admin/tenants/{}", suspended_t.id),
        ADMIN_TOKEN,
        json!({"suspended": true}),
    )
    .await
    .assert_status(200);
    app.patch(
        &format!("/api/v1/licenses/{}", kept_s.id),
        &kept_t.owner_token,
        json!({"check_interval_seconds": 90}),
    )
    .await
    .assert_status(200);

    let (i_revoked, i_suspended, i_kept) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let revoked = with_token((&revoked_t, &revoked_s), &revoked_id, i_revoked);
    let suspended = with_token((&suspended_t, &suspended_s), &suspended_id, i_suspended);
    let kept = with_token((&kept_t, &kept_s), &kept_id, i_kept);
    let outcomes = write_batch(&app.pool, &[&revoked, &kept, &suspended], 8)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            Err(Refused::TokenRevoked),
            Ok(Outcome {
                accepted: 2,
                duplicates: 0,
                check_interval_seconds: Some(90),
            }),
            Err(Refused::TenantSuspended),
        ]
    );
    assert_eq!(stored_rows(&app, i_revoked).await, 0);
    assert_eq!(stored_rows(&app, i_suspended).await, 0);
    assert_eq!(high_water(&app, i_revoked).await, None);
    assert_eq!(high_water(&app, i_suspended).await, None);
    assert_eq!(stored_rows(&app, i_kept).await, 2);
}

#[sqlx::test]
async fn timestamps_outside_2000_to_a_day_ahead_are_refused_and_other_tenants_are_served_right_after(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let (_, hostile) = app.create_tenant_with_site("hostile", "LIC-H").await;
    let (_, honest) = app.create_tenant_with_site("honest", "LIC-OK").await;
    let before = written(&app).await;
    // chrono reads signed extended years; the writer once panicked on `observed_at - offset`.
    let instance = Uuid::new_v4();
    let cases = [
        (
            json!({"agent": {"instance_id": instance, "sent_at": "-262000-01-01T00:00:00Z"},
                   "heartbeats": [{"seq": 1, "observed_at": "2026-11-23T10:00:00Z", "cameras": {}}]}),
            "/agent/sent_at",
        ),
        (
            json!({"agent": {"instance_id": instance},
                   "heartbeats": [{"seq": 1, "observed_at": "+262000-01-01T00:00:00Z", "cameras": {}}]}),
            "/heartbeats/0/observed_at",
        ),
        (
            json!({"agent": {"instance_id": instance},
                   "heartbeats": [{"seq": 1, "observed_at": Utc::now(),
                     "cameras": {"camera-1": {"status": "running", "last_frame_at": "1999-12-31T23:59:59Z"}}}]}),
            "/heartbeats/0/cameras/camera-1/last_frame_at",
        ),
        (
            json!({"agent": {"instance_id": instance},
                   "heartbeats": [{"seq": 1, "observed_at": Utc::now() + Duration::days(2), "cameras": {}}]}),
            "/heartbeats/0/observed_at",
        ),
    ];
    for (body, pointer) in cases {
        let r = app.push(&hostile.agent_token, &body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), [pointer], "{body}");
    }
    assert_eq!(
        written(&app).await,
        before,
        "nothing of the refused batches is stored"
    );
    // The writers are alive: another tenant's agent, and the same one with sane times, get in.
    app.push_ok(&honest.agent_token, &Batch::one_active_camera())
        .await;
    app.push_ok(&hostile.agent_token, &Batch::one_active_camera())
        .await;
}

#[sqlx::test]
async fn a_token_past_its_rate_limit_gets_429_while_other_tokens_are_served(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| {
        s.ingest.requests_per_token_per_minute = 3;
        s.ingest.requests_per_license_per_minute = 1000;
    })
    .await;
    let (owner, flooding) = app.create_tenant_with_site("flood", "LIC-F").await;
    let (_, calm) = app.create_tenant_with_site("calm", "LIC-C").await;
    let batch = Batch::one_active_camera();
    for _ in 0..3 {
        // The same batch again: acknowledged as a duplicate, but a request all the same.
        app.push(&flooding.agent_token, &batch)
            .await
            .assert_status(200);
    }
    let r = app.push(&flooding.agent_token, &batch).await;
    r.assert_problem(429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After: {wait}");
    // Another tenant's agent, and another token of the same license, are served.
    app.push_ok(&calm.agent_token, &batch).await;
    let (_, second) = app
        .create_agent_token(&owner.owner_token, &flooding.id)
        .await;
    app.push_ok(&second, &Batch::one_active_camera()).await;
}

/// The license's roll-up columns, and the same aggregate computed from its instance rows now
/// (what `rollup::refresh_licenses` writes).
async fn rollup_and_recomputed(app: &TestApp, license: Uuid) -> (Value, Value) {
    let row: (Value, Value) = sqlx::query_as(
        "SELECT to_jsonb(l) - ARRAY(SELECT c FROM jsonb_object_keys(to_jsonb(l)) c
                                   WHERE c NOT IN ('instances', 'activity_newest', 'activity_oldest',
                                                   'cameras_total', 'cameras_active_if_fresh',
                                                   'cameras_working_if_fresh', 'webhooks_failing',
                                                   'webhooks_cached')),
                jsonb_build_object(
                    'instances', count(a.*), 'activity_newest', max(a.last_activity_at),
                    'activity_oldest', min(a.last_activity_at), 'cameras_total', sum(a.cameras_total),
                    'cameras_active_if_fresh', sum(a.cameras_active_if_fresh),
                    'cameras_working_if_fresh', sum(a.cameras_working_if_fresh),
                    'webhooks_failing', sum(a.webhooks_failing), 'webhooks_cached', sum(a.webhooks_cached))
         FROM licenses l JOIN agent_instances a ON a.tenant_id = l.tenant_id AND a.license_id = l.id
         WHERE l.id = $1 GROUP BY l.*",
    )
    .bind(license)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    row
}

#[sqlx::test]
async fn the_license_roll_up_computed_in_memory_equals_the_aggregate_of_its_instances(
    pool: PgPool,
) {
    // In the steady state (no new instance, no camera row changed) the writer computes the
    // license's roll-up from the instance rows it locked instead of reading them back. Every
    // shape of batch below must leave the same columns as the SQL aggregate.
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-acme").await;
    let license = AgentLicense {
        tenant_id: tenant.id.parse().unwrap(),
        license_id: site.id.parse().unwrap(),
    };
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let now = Utc::now();
    let failing = |cached: i64| {
        Camera::active().with(json!({"webhooks": {"status": "failing", "cached": cached}}))
    };
    let req =
        |instance: Uuid, seq: u64, at: DateTime<Utc>, cams: Vec<(&str, Camera)>| IngestRequest {
            license,
            token_id: None,
            batch: serde_json::from_value(
                Batch::new(instance)
                    .seq(seq)
                    .observed_at(at)
                    .cameras(cams)
                    .to_json(),
            )
            .unwrap(),
            received_at: Utc::now(),
        };
    let steps: Vec<Vec<IngestRequest>> = vec![
        // New instances (the SQL path).
        vec![
            req(
                a,
                1,
                now - Duration::seconds(30),
                vec![("cam-a1", Camera::active()), ("cam-a2", failing(3))],
            ),
            req(
                b,
                1,
                now - Duration::seconds(20),
                vec![("cam-b1", Camera::active())],
            ),
        ],
        // Steady state, one instance: only its activity and webhooks change.
        vec![req(
            a,
            2,
            now - Duration::seconds(10),
            vec![("cam-a1", failing(5)), ("cam-a2", failing(4))],
        )],
        // Steady state, both, the older one replayed (its activity must not go back).
        vec![
            req(
                b,
                2,
                now - Duration::seconds(25),
                vec![("cam-b1", failing(1))],
            ),
            req(
                a,
                3,
                now,
                vec![("cam-a1", Camera::active()), ("cam-a2", Camera::active())],
            ),
        ],
        // A camera dropped (a camera row changes: the SQL path again), then steady again.
        vec![req(a, 4, now, vec![("cam-a1", failing(2))])],
        vec![req(b, 3, now, vec![("cam-b1", Camera::active())])],
    ];
    for (i, step) in steps.iter().enumerate() {
        let refs: Vec<&IngestRequest> = step.iter().collect();
        let outcomes = write_batch(&app.pool, &refs, 8).await.unwrap();
        assert!(
            outcomes.iter().all(|o| o.unwrap().accepted == 1),
            "step {i}: {outcomes:?}"
        );
        let (stored, recomputed) = rollup_and_recomputed(&app, site.id.parse().unwrap()).await;
        assert_eq!(stored, recomputed, "step {i}");
    }
    let (stored, _) = rollup_and_recomputed(&app, site.id.parse().unwrap()).await;
    assert_eq!(stored["instances"], 2);
    assert_eq!(stored["webhooks_failing"], 1, "{stored}");
    assert_eq!(stored["webhooks_cached"], 2, "{stored}");
    assert_eq!(stored["cameras_total"], 2, "{stored}");
}
