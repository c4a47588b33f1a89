//! The contract: `openapi.yaml` describes every route, and every response matches it.
//!
//! `TestApp::send` checks each response of every test against the file; this module adds
//! the two checks that need the whole picture: the file is what the code generates, and one
//! scenario exercises every documented operation (so an undocumented route, or one whose
//! documentation is stale, fails here).

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeSet;

#[test]
fn openapi_yaml_is_what_the_code_generates() {
    let generated = streamwatch::http::openapi::yaml().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == generated,
        "openapi.yaml is out of date with the code: run `UPDATE_OPENAPI=1 cargo nextest run --test api openapi` and commit the result"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_every_error_as_problem_json() {
    let doc = contract();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                // The one exception by design: /heartbeat answers 500 in the edge Heartbeat
                // API's own shape, so that uptime monitors that poll agents can poll it.
                let edge_shape = path.ends_with("/heartbeat") && status == "500";
                let error = status.starts_with('4') || status.starts_with('5');
                if error && path.starts_with("/api") && !edge_shape {
                    assert!(
                        response["content"]
                            .get("application/problem+json")
                            .is_some(),
                        "{method} {path} {status} is not application/problem+json"
                    );
                }
            }
        }
    }
}

#[test]
fn the_checker_refuses_undocumented_routes_statuses_and_shapes() {
    // The checker itself must be able to fail, or the per-response checks prove nothing.
    assert!(
        check_contract(
            "get",
            Some("/api/v1/not-documented"),
            200,
            Some("application/json"),
            b"{}"
        )
        .is_err()
    );
    assert!(
        check_contract(
            "get",
            Some("/api/v1/licenses/{id}"),
            418,
            Some("application/json"),
            b"{}"
        )
        .is_err()
    );
    assert!(
        check_contract(
            "get",
            Some("/healthz"),
            200,
            Some("application/json"),
            br#"{"status": 5}"#
        )
        .is_err()
    );
    assert!(
        check_contract(
            "get",
            Some("/healthz"),
            200,
            Some("application/json"),
            br#"{"status": "ok"}"#
        )
        .is_ok()
    );
    assert!(check_contract("get", None, 200, Some("application/json"), b"{}").is_err());
    let license_without_key = br#"{"id": "01a209cd-45db-728f-8d88-740e17ffcafb", "name": "x", "kind": "direct",
        "check_interval_seconds": 600, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"}"#;
    assert!(
        check_contract(
            "get",
            Some("/api/v1/licenses/{id}"),
            200,
            Some("application/json"),
            license_without_key
        )
        .is_err()
    );
}

#[sqlx::test]
async fn every_documented_operation_is_exercised_and_answers_as_documented(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .assert_status(200);
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    ready.assert_status(200);
    // The token cache's listener may still be connecting: informational, either way ready.
    let cache = ready.body["components"]["agent_token_cache"].clone();
    assert!(cache == "ok" || cache == "bypassed", "{cache}");
    assert_eq!(
        ready.body["components"],
        serde_json::json!({"database": "ok", "ingest_writers": "ok", "scheduler": "ok",
                           "agent_token_cache": cache})
    );

    // Admin: tenants.
    let acme = app.create_tenant("acme").await;
    app.get("/api/v1/admin/tenants", ADMIN_TOKEN)
        .await
        .assert_status(200);
    app.get(&format!("/api/v1/admin/tenants/{}", acme.id), ADMIN_TOKEN)
        .await
        .assert_status(200);
    app.patch(
        &format!("/api/v1/admin/tenants/{}", acme.id),
        ADMIN_TOKEN,
        json!({"name": "Acme Corp"}),
    )
    .await
    .assert_status(200);

    // Auth and users.
    let owner = &acme.owner_token;
    app.get("/api/v1/me", owner).await.assert_status(200);
    let (viewer_id, _) = app.create_user(owner, "viewer@acme.test", "viewer").await;
    app.get("/api/v1/users", owner).await.assert_status(200);
    app.get(&format!("/api/v1/users/{viewer_id}"), owner)
        .await
        .assert_status(200);
    app.patch(
        &format!("/api/v1/users/{viewer_id}"),
        owner,
        json!({"role": "admin"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/v1/users/{viewer_id}"), owner)
        .await
        .assert_status(204);

    // API keys.
    let (key_id, key) = app.create_api_key(owner, "viewer").await;
    app.get("/api/v1/me", &key).await.assert_status(200);
    app.get("/api/v1/api-keys", owner).await.assert_status(200);
    app.delete(&format!("/api/v1/api-keys/{key_id}"), owner)
        .await
        .assert_status(204);

    // Licenses and agent tokens.
    let license = app.create_license(owner, "LIC-001").await;
    let id = license["id"].as_str().unwrap();
    app.get("/api/v1/licenses?sort=-created_at&limit=1", owner)
        .await
        .assert_status(200);
    app.get(&format!("/api/v1/licenses/{id}"), owner)
        .await
        .assert_status(200);
    app.patch(
        &format!("/api/v1/licenses/{id}"),
        owner,
        json!({"check_interval_seconds": 60}),
    )
    .await
    .assert_status(200);
    let (token_id, _) = app.create_agent_token(owner, id).await;
    app.get(&format!("/api/v1/licenses/{id}/agent-tokens"), owner)
        .await
        .assert_status(200);
    let (_, agent) = app.create_agent_token(owner, id).await;
    app.push(&agent, &Batch::one_active_camera())
        .await
        .assert_status(200);
    for path in [
        "status",
        "heartbeat",
        "cameras/camera-1/status",
        "activity?bucket=3600",
    ] {
        app.get(&format!("/api/v1/licenses/{id}/{path}"), owner)
            .await
            .assert_status(200);
    }
    app.get("/api/v1/streams/-/status", owner)
        .await
        .assert_status(200);
    // Snapshots (SPEC section 7): an agent's upload, read back by the tenant.
    let upload = app
        .client
        .put(format!("{}/api/v1/ingest/snapshots/camera-1", app.address))
        .bearer_auth(&agent)
        .header("content-type", "image/jpeg")
        .body(include_bytes!("../fixtures/snapshot.jpg").to_vec());
    app.send(upload).await.assert_status(204);
    app.get(
        &format!("/api/v1/licenses/{id}/cameras/camera-1/snapshot"),
        owner,
    )
    .await
    .assert_status(200);
    let settings = format!("/api/v1/licenses/{id}/notification-settings");
    app.get(&settings, owner).await.assert_status(200);
    let body = json!({"enabled": true, "inactivity_interval_seconds": 3600,
                      "notification_interval_seconds": 28800, "recipients": ["a@x.test"]});
    app.request(Method::PUT, &settings, Some(owner), Some(body))
        .await
        .assert_status(200);
    app.get(&format!("/api/v1/licenses/{id}/notifications"), owner)
        .await
        .assert_status(200);
    // Quiet periods.
    let window = app
        .post(
            "/api/v1/maintenance-windows",
            owner,
            json!({"name": "Sundays", "scope": {"license_ids": [id]}, "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
                   "duration_seconds": 7200, "timezone": "Europe/Berlin"}),
        )
        .await;
    window.assert_status(201);
    let window = format!(
        "/api/v1/maintenance-windows/{}",
        window.body["id"].as_str().unwrap()
    );
    app.get("/api/v1/maintenance-windows", owner)
        .await
        .assert_status(200);
    app.get(&window, owner).await.assert_status(200);
    app.patch(&window, owner, json!({"scope": {"tags": ["region:eu"]}}))
        .await
        .assert_status(200);
    app.delete(&window, owner).await.assert_status(204);
    let snooze = format!("/api/v1/licenses/{id}/snooze");
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    app.post(&snooze, owner, json!({"until": until}))
        .await
        .assert_status(200);
    app.delete(&snooze, owner).await.assert_status(204);
    // Alert channels (a literal public address: saving it needs no DNS).
    let channel = app
        .post(
            "/api/v1/channels",
            owner,
            json!({"name": "Ops hook", "kind": "webhook",
                   "config": {"url": "https://93.184.216.34/hook", "secret": "s3cret"}}),
        )
        .await;
    channel.assert_status(201);
    let channel = format!("/api/v1/channels/{}", channel.body["id"].as_str().unwrap());
    app.get("/api/v1/channels", owner).await.assert_status(200);
    app.get(&channel, owner).await.assert_status(200);
    app.patch(&channel, owner, json!({"name": "Ops hook 2"}))
        .await
        .assert_status(200);
    app.delete(&channel, owner).await.assert_status(204);
    // The test send of a channel that is gone: its 404 exercises the route without making
    // the server call out (channels::a_test_send_* cover the 200).
    app.request(Method::POST, &format!("{channel}/test"), Some(owner), None)
        .await
        .assert_problem(404);
    // Without the simulated clock these answer 403; that they answer as documented is the point.
    app.post(
        "/api/v1/admin/clock",
        ADMIN_TOKEN,
        json!({"advance_seconds": 60}),
    )
    .await
    .assert_status(403);
    app.request(Method::POST, "/api/v1/admin/sweep", Some(ADMIN_TOKEN), None)
        .await
        .assert_status(403);
    app.request(
        Method::POST,
        &format!("/api/v1/licenses/{id}/acknowledge"),
        Some(owner),
        None,
    )
    .await
    .assert_status(409);
    app.request(Method::GET, "/acknowledge?token=forged", None, None)
        .await
        .assert_status(400);
    app.request(Method::POST, "/acknowledge?token=forged", None, None)
        .await
        .assert_status(400);
    app.request(Method::GET, "/unsubscribe?token=forged", None, None)
        .await
        .assert_status(400);
    app.request(Method::POST, "/unsubscribe?token=forged", None, None)
        .await
        .assert_status(400);
    app.get("/api/v1/summary", owner).await.assert_status(200);
    app.delete(
        &format!("/api/v1/licenses/{id}/agent-tokens/{token_id}"),
        owner,
    )
    .await
    .assert_status(204);
    app.delete(&format!("/api/v1/licenses/{id}"), owner)
        .await
        .assert_status(204);

    // Last: these end the session.
    app.request(
        Method::PUT,
        "/api/v1/me/password",
        Some(owner),
        Some(json!({"current_password": PASSWORD, "new_password": "another long password"})),
    )
    .await
    .assert_status(204);
    let fresh = app.login(&acme.owner_email, "another long password").await;
    app.request(Method::POST, "/api/v1/auth/logout-all", Some(&fresh), None)
        .await
        .assert_status(204);
    app.request(Method::GET, "/metrics", None, None)
        .await
        .assert_status(200);

    let documented: BTreeSet<(String, String)> = contract()["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let seen = app.seen.lock().unwrap().clone();
    let missed: Vec<_> = documented.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "documented operations this scenario did not exercise: {missed:?}"
    );
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes that answered but are not in openapi.yaml: {undocumented:?}"
    );
}
