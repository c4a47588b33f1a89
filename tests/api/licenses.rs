//! Licenses: create, read, update, delete; the list (filter, search, sort, cursor pages); and
//! agent tokens (shown once, stored hashed, listed without the secret, revocable).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

/// Creates a license with this key, name and kind (interval 600 s).
async fn license(app: &TestApp, token: &str, key: &str, name: &str, kind: &str) -> Value {
    app.create_license_with(token, json!({"key": key, "name": name, "kind": kind}))
        .await
}

/// The keys of one page of `GET /licenses?<query>`, and its `next_cursor`.
async fn page(app: &TestApp, token: &str, query: &str) -> (Vec<String>, Option<String>) {
    let r = app.get(&format!("/api/v1/licenses?{query}"), token).await;
    r.assert_status(200);
    let keys = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .collect();
    (keys, r.body["next_cursor"].as_str().map(str::to_owned))
}

/// The keys `GET /licenses?<query>` returns in one page of 200.
async fn keys(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (keys, next) = page(app, token, &format!("limit=200&{query}")).await;
    assert_eq!(next, None, "{query}: one page holds everything");
    keys
}

fn sorted(mut v: Vec<&str>) -> Vec<String> {
    v.sort_unstable();
    v.into_iter().map(str::to_owned).collect()
}

#[sqlx::test]
async fn a_license_can_be_created_read_updated_and_deleted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;

    let r = app
        .post("/api/v1/licenses", &owner, json!({"key": "LIC-001", "name": "  Depot 7  ", "kind": "cloud", "check_interval_seconds": 300}))
        .await;
    r.assert_status(201);
    let created = r.body;
    assert_eq!(created["key"], "LIC-001");
    assert_eq!(created["name"], "Depot 7", "names are trimmed");
    assert_eq!(created["kind"], "cloud");
    assert_eq!(created["check_interval_seconds"], 300);
    let path = format!("/api/v1/licenses/{}", id(&created));

    let read = app.get(&path, &owner).await;
    read.assert_status(200);
    assert_eq!(read.body, created);

    let renamed = app.patch(&path, &owner, json!({"name": "Depot 8"})).await;
    renamed.assert_status(200);
    assert_eq!(renamed.body["name"], "Depot 8");
    for unchanged in ["id", "key", "kind", "check_interval_seconds", "created_at"] {
        assert_eq!(
            renamed.body[unchanged], created[unchanged],
            "PATCH of the name changed {unchanged}"
        );
    }
    let rest = app
        .patch(
            &path,
            &owner,
            json!({"key": "LIC-001b", "kind": "direct", "check_interval_seconds": 86400}),
        )
        .await;
    rest.assert_status(200);
    assert_eq!(
        (
            &rest.body["key"],
            &rest.body["kind"],
            &rest.body["check_interval_seconds"],
            &rest.body["name"]
        ),
        (
            &json!("LIC-001b"),
            &json!("direct"),
            &json!(86400),
            &json!("Depot 8")
        )
    );
    let nothing = app.patch(&path, &owner, json!({})).await;
    nothing.assert_status(200);
    assert_eq!(
        (&nothing.body["key"], &nothing.body["name"]),
        (&rest.body["key"], &rest.body["name"])
    );
    assert_eq!(app.get(&path, &owner).await.body["key"], "LIC-001b");

    app.delete(&path, &owner).await.assert_status(204);
    app.get(&path, &owner).await.assert_problem(404);
    app.patch(&path, &owner, json!({"name": "Ghost"}))
        .await
        .assert_problem(404);
    app.delete(&path, &owner).await.assert_problem(404);
    assert_eq!(app.count("licenses").await, 0);
}

#[sqlx::test]
async fn kind_and_check_interval_default_to_direct_and_600_seconds(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let r = app
        .post(
            "/api/v1/licenses",
            &owner,
            json!({"key": "LIC-001", "name": "Depot 7"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(
        (&r.body["kind"], &r.body["check_interval_seconds"]),
        (&json!("direct"), &json!(600))
    );
}

#[sqlx::test]
async fn check_interval_bounds_60_and_86400_seconds_are_accepted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    for (key, seconds) in [("MIN", 60), ("MAX", 86_400)] {
        let r = app
            .post(
                "/api/v1/licenses",
                &owner,
                json!({"key": key, "name": key, "check_interval_seconds": seconds}),
            )
            .await;
        r.assert_status(201);
        assert_eq!(r.body["check_interval_seconds"], seconds);
    }
}

#[sqlx::test]
async fn names_of_200_characters_are_counted_in_characters_not_bytes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let name = "ü".repeat(200);
    let r = app
        .post(
            "/api/v1/licenses",
            &owner,
            json!({"key": "LIC-001", "name": name, "check_interval_seconds": 600}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.body["name"], name);
    let key = "k".repeat(64);
    app.post("/api/v1/licenses", &owner, json!({"key": key, "name": "n"}))
        .await
        .assert_status(201);
}

#[sqlx::test]
async fn license_keys_are_unique_per_tenant_and_case_sensitive(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await.owner_token;
    let other = app.create_tenant("other").await.owner_token;
    app.create_license(&acme, "LIC-001").await;

    let dup = app
        .post(
            "/api/v1/licenses",
            &acme,
            json!({"key": "LIC-001", "name": "Again"}),
        )
        .await;
    dup.assert_problem(409);
    assert_eq!(dup.pointers(), ["/key"]);
    license(&app, &acme, "lic-001", "Lower case", "direct").await;
    license(&app, &other, "LIC-001", "Other tenant", "direct").await;
    assert_eq!(app.count("licenses").await, 3);
}

#[sqlx::test]
async fn changing_a_key_to_one_another_license_has_is_a_conflict_at_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let first = app.create_license(&owner, "LIC-001").await;
    app.create_license(&owner, "LIC-002").await;
    let path = format!("/api/v1/licenses/{}", id(&first));

    let r = app
        .patch(&path, &owner, json!({"key": "LIC-002", "name": "Renamed"}))
        .await;
    r.assert_problem(409);
    assert_eq!(r.pointers(), ["/key"]);
    assert_eq!(
        app.get(&path, &owner).await.body,
        first,
        "nothing of the refused PATCH was applied"
    );

    // Its own key is no conflict.
    app.patch(&path, &owner, json!({"key": "LIC-001"}))
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn deleting_a_license_deletes_its_agent_tokens(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let doomed = app.create_license(&owner, "LIC-001").await;
    let kept = app.create_license(&owner, "LIC-002").await;
    let (_, doomed_secret) = app.create_agent_token(&owner, id(&doomed)).await;
    app.create_agent_token(&owner, id(&doomed)).await;
    app.create_agent_token(&owner, id(&kept)).await;
    assert_eq!(app.count("agent_tokens").await, 3);

    app.delete(&format!("/api/v1/licenses/{}", id(&doomed)), &owner)
        .await
        .assert_status(204);

    assert_eq!(
        app.count("agent_tokens").await,
        1,
        "only the other license's token is left"
    );
    let left: String = sqlx::query_scalar("SELECT license_id::text FROM agent_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, id(&kept));
    // The deleted license's agent is not recognised any more (401, not "valid agent token": 403).
    app.get("/api/v1/me", &doomed_secret)
        .await
        .assert_problem(401);
    app.get(
        &format!("/api/v1/licenses/{}/agent-tokens", id(&doomed)),
        &owner,
    )
    .await
    .assert_problem(404);
}

#[sqlx::test]
async fn a_viewer_may_read_licenses_but_not_change_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let (_, viewer) = app.create_user(&owner, "v@acme.test", "viewer").await;
    let lic = app.create_license(&owner, "LIC-001").await;
    let path = format!("/api/v1/licenses/{}", id(&lic));

    app.get(&path, &viewer).await.assert_status(200);
    assert_eq!(keys(&app, &viewer, "").await, ["LIC-001"]);
    app.post(
        "/api/v1/licenses",
        &viewer,
        json!({"key": "LIC-002", "name": "x"}),
    )
    .await
    .assert_problem(403);
    app.patch(&path, &viewer, json!({"name": "x"}))
        .await
        .assert_problem(403);
    app.delete(&path, &viewer).await.assert_problem(403);
    assert_eq!(app.get(&path, &owner).await.body, lic);
}

#[sqlx::test]
async fn the_list_filters_by_kind(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    license(&app, &owner, "D-1", "Direct one", "direct").await;
    license(&app, &owner, "C-1", "Cloud one", "cloud").await;
    license(&app, &owner, "D-2", "Direct two", "direct").await;

    assert_eq!(
        keys(&app, &owner, "kind=direct&sort=key").await,
        ["D-1", "D-2"]
    );
    assert_eq!(keys(&app, &owner, "kind=cloud").await, ["C-1"]);
    assert_eq!(keys(&app, &owner, "sort=key").await, ["C-1", "D-1", "D-2"]);
    let r = app.get("/api/v1/licenses?kind=satellite", &owner).await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/query/kind"]);
}

#[sqlx::test]
async fn text_search_is_case_insensitive_on_name_and_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    license(&app, &owner, "LIC-001", "Depot North", "direct").await;
    license(&app, &owner, "LIC-002", "Harbour", "direct").await;
    license(&app, &owner, "DEPOT-9", "Warehouse", "direct").await;
    license(&app, &owner, "LIC-003", "Office", "cloud").await;

    assert_eq!(
        sorted(
            keys(&app, &owner, "q=depot")
                .await
                .iter()
                .map(String::as_str)
                .collect()
        ),
        ["DEPOT-9", "LIC-001"]
    );
    assert_eq!(keys(&app, &owner, "q=HARB").await, ["LIC-002"]);
    assert_eq!(
        keys(&app, &owner, "q=lic-00&sort=key").await,
        ["LIC-001", "LIC-002", "LIC-003"]
    );
    assert_eq!(
        keys(&app, &owner, "q=lic&kind=cloud").await,
        ["LIC-003"],
        "search and filter combine"
    );
    assert_eq!(
        keys(&app, &owner, "q=%20%20harbour%20").await,
        ["LIC-002"],
        "the search text is trimmed"
    );
    assert!(keys(&app, &owner, "q=nowhere").await.is_empty());
}

#[sqlx::test]
async fn percent_and_underscore_in_a_search_are_literal_not_wildcards(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    license(&app, &owner, "A-1", "Sale 50% off", "direct").await;
    license(&app, &owner, "A-2", "Sale 500 off", "direct").await;
    license(&app, &owner, "B_1", "Under_score", "direct").await;
    license(&app, &owner, "B-1", "Underxscore", "direct").await;
    license(&app, &owner, "C-1", r"Back\slash", "direct").await;

    // `%25` is `%` in the query string.
    assert_eq!(keys(&app, &owner, "q=50%25").await, ["A-1"]);
    assert_eq!(keys(&app, &owner, "q=%25").await, ["A-1"]);
    assert_eq!(keys(&app, &owner, "q=r_s").await, ["B_1"]);
    assert_eq!(keys(&app, &owner, "q=B_").await, ["B_1"]);
    assert_eq!(keys(&app, &owner, "q=_").await, ["B_1"]);
    assert_eq!(keys(&app, &owner, "q=k%5Cs").await, ["C-1"]);
}

#[sqlx::test]
async fn the_list_sorts_by_name_key_and_creation_both_ways(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    // Created in this order; names, keys and creation order all disagree.
    license(&app, &owner, "K2", "Bravo", "direct").await;
    license(&app, &owner, "K3", "Alpha", "direct").await;
    license(&app, &owner, "K1", "Charlie", "direct").await;

    assert_eq!(
        keys(&app, &owner, "").await,
        ["K3", "K2", "K1"],
        "default: by name"
    );
    assert_eq!(keys(&app, &owner, "sort=name").await, ["K3", "K2", "K1"]);
    assert_eq!(keys(&app, &owner, "sort=-name").await, ["K1", "K2", "K3"]);
    assert_eq!(keys(&app, &owner, "sort=key").await, ["K1", "K2", "K3"]);
    assert_eq!(keys(&app, &owner, "sort=-key").await, ["K3", "K2", "K1"]);
    assert_eq!(
        keys(&app, &owner, "sort=created_at").await,
        ["K2", "K3", "K1"]
    );
    assert_eq!(
        keys(&app, &owner, "sort=-created_at").await,
        ["K1", "K3", "K2"]
    );
    for bad in ["password_hash", "-", "name,key", "statuses"] {
        let r = app
            .get(&format!("/api/v1/licenses?sort={bad}"), &owner)
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), ["/query/sort"], "sort={bad}");
    }
}

#[sqlx::test]
async fn paging_with_a_cursor_returns_every_license_exactly_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    // Two pairs of equal names, so that the id tie-breaker is needed across page boundaries.
    for (key, name) in [
        ("L5", "Echo"),
        ("L2", "Bravo"),
        ("L7", "Alpha"),
        ("L1", "Delta"),
        ("L4", "Bravo"),
        ("L3", "Charlie"),
        ("L6", "Echo"),
    ] {
        license(&app, &owner, key, name, "direct").await;
    }

    for sort in ["name", "-name", "key", "-key", "created_at", "-created_at"] {
        let all = keys(&app, &owner, &format!("sort={sort}")).await;
        assert_eq!(all.len(), 7);
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages <= 3, "sort={sort}: more pages than 7 licenses need");
            let query = match &cursor {
                Some(c) => format!("sort={sort}&limit=3&cursor={c}"),
                None => format!("sort={sort}&limit=3"),
            };
            let (items, next) = page(&app, &owner, &query).await;
            assert!(items.len() <= 3, "sort={sort}: page over the limit");
            paged.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3, "sort={sort}: 3 + 3 + 1");
        assert_eq!(
            paged, all,
            "sort={sort}: the pages, end to end, are the whole sorted list"
        );
    }
    // A page that ends exactly at the last license has no next page.
    let (items, next) = page(&app, &owner, "limit=7").await;
    assert_eq!((items.len(), next), (7, None));
}

#[sqlx::test]
async fn a_cursor_works_only_with_the_sort_it_was_made_for(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    for key in ["A", "B", "C"] {
        license(&app, &owner, key, key, "direct").await;
    }
    let (_, cursor) = page(&app, &owner, "sort=name&limit=1").await;
    let cursor = cursor.unwrap();
    let (next, _) = page(&app, &owner, &format!("sort=name&limit=1&cursor={cursor}")).await;
    assert_eq!(next, ["B"]);

    for other in ["-name", "key", "created_at"] {
        let r = app
            .get(
                &format!("/api/v1/licenses?sort={other}&limit=1&cursor={cursor}"),
                &owner,
            )
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), ["/query/cursor"], "sort={other}");
    }
    let r = app
        .get(&format!("/api/v1/licenses?limit=1&cursor={cursor}"), &owner)
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["items"][0]["key"], "B",
        "no sort means name, the sort the cursor was made for"
    );
}

#[sqlx::test]
async fn a_cursor_that_this_api_did_not_make_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    app.create_license(&owner, "LIC-001").await;
    for garbage in ["garbage", "%00", "eyJzb3J0IjoibmFtZSJ9", "////"] {
        let r = app
            .get(&format!("/api/v1/licenses?cursor={garbage}"), &owner)
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), ["/query/cursor"], "cursor={garbage}");
    }
}

#[sqlx::test]
async fn limits_outside_1_to_200_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    app.create_license(&owner, "LIC-001").await;
    for bad in ["0", "201", "abc", "-1", "1.5", ""] {
        let r = app
            .get(&format!("/api/v1/licenses?limit={bad}"), &owner)
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), ["/query/limit"], "limit={bad}");
    }
    for good in ["1", "200"] {
        app.get(&format!("/api/v1/licenses?limit={good}"), &owner)
            .await
            .assert_status(200);
    }
    let r = app.get("/api/v1/licenses?limit=0&sort=nope", &owner).await;
    r.assert_problem(422);
    assert_eq!(
        sorted(r.pointers().iter().map(String::as_str).collect()),
        ["/query/limit", "/query/sort"],
        "every bad parameter is listed"
    );
}

#[sqlx::test]
async fn an_agent_token_is_shown_once_with_a_ready_to_paste_config(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let lic = app.create_license(&owner, "LIC-001").await;
    let path = format!("/api/v1/licenses/{}/agent-tokens", id(&lic));

    let r = app.post(&path, &owner, json!({"name": "site box"})).await;
    r.assert_status(201);
    let token = r.body["token"].as_str().unwrap();
    assert!(token.starts_with("swa_"), "{token}");
    assert!(token.len() >= 4 + 40, "a token with a real secret: {token}");
    assert_eq!(r.body["name"], "site box");
    assert_eq!(r.body["license_id"], lic["id"]);
    assert!(
        token.starts_with(r.body["prefix"].as_str().unwrap()),
        "the prefix is the start of the token"
    );
    let snippet = r.body["config_snippet"].as_str().unwrap();
    let lines: Vec<&str> = snippet.lines().map(str::trim).collect();
    assert!(lines.contains(&"[central]"), "{snippet}");
    assert!(
        lines.contains(&format!("token = \"{token}\"").as_str()),
        "{snippet}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("url = \"http")),
        "{snippet}"
    );

    // Without a body the token gets a default name.
    let r = app.request(Method::POST, &path, Some(&owner), None).await;
    r.assert_status(201);
    assert!(!r.body["name"].as_str().unwrap().is_empty());
    assert_ne!(r.body["token"], token, "every token is new");
}

#[sqlx::test]
async fn agent_tokens_are_stored_only_as_their_sha256(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let lic = app.create_license(&owner, "LIC-001").await;
    let (token_id, token) = app.create_agent_token(&owner, id(&lic)).await;

    let anywhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM agent_tokens t
         WHERE strpos(row_to_json(t)::text, $1) > 0
            OR strpos(encode(secret_hash, 'escape'), $1) > 0
            OR prefix = $1",
    )
    .bind(&token)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(anywhere, 0, "the plain token is stored somewhere");
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_hash FROM agent_tokens WHERE id = $1::uuid")
            .bind(&token_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());
}

#[sqlx::test]
async fn the_token_list_never_shows_the_secret(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let lic = app.create_license(&owner, "LIC-001").await;
    let (first_id, first) = app.create_agent_token(&owner, id(&lic)).await;
    let (second_id, second) = app.create_agent_token(&owner, id(&lic)).await;

    let r = app
        .get(
            &format!("/api/v1/licenses/{}/agent-tokens", id(&lic)),
            &owner,
        )
        .await;
    r.assert_status(200);
    let ids: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        sorted(ids),
        sorted(vec![first_id.as_str(), second_id.as_str()])
    );
    for secret in [&first, &second] {
        assert!(
            !r.text.contains(secret.as_str()),
            "the list shows a secret: {}",
            r.text
        );
        assert!(
            !r.text.contains(&secret[4..]),
            "the list shows a secret without its prefix: {}",
            r.text
        );
    }
}

#[sqlx::test]
async fn several_agent_tokens_are_valid_at_once_until_revoked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let lic = app.create_license(&owner, "LIC-001").await;
    let list = format!("/api/v1/licenses/{}/agent-tokens", id(&lic));
    let (old_id, old) = app.create_agent_token(&owner, id(&lic)).await;
    let (new_id, new) = app.create_agent_token(&owner, id(&lic)).await;

    // A valid agent token is recognised and refused outside ingest (403); an unknown or
    // revoked one is not recognised at all (401).
    app.get("/api/v1/me", &old).await.assert_problem(403);
    app.get("/api/v1/me", &new).await.assert_problem(403);
    let r = app.get(&list, &owner).await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["revoked_at"].is_null()),
        "{}",
        r.text
    );

    app.delete(&format!("{list}/{old_id}"), &owner)
        .await
        .assert_status(204);

    let r = app.get(&list, &owner).await;
    let items = r.body["items"].as_array().unwrap();
    let revoked =
        |token_id: &str| items.iter().find(|t| id(t) == token_id).unwrap()["revoked_at"].clone();
    assert!(
        revoked(&old_id).is_string(),
        "the revoked token is listed with revoked_at: {}",
        r.text
    );
    assert!(
        revoked(&new_id).is_null(),
        "the other token is untouched: {}",
        r.text
    );
    app.get("/api/v1/me", &old).await.assert_problem(401);
    app.get("/api/v1/me", &new).await.assert_problem(403);

    // Revoking again keeps the first revocation time; unknown ids are 404.
    let first_revocation = revoked(&old_id);
    app.delete(&format!("{list}/{old_id}"), &owner)
        .await
        .assert_status(204);
    let r = app.get(&list, &owner).await;
    let again = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| id(t) == old_id)
        .unwrap()["revoked_at"]
        .clone();
    assert_eq!(again, first_revocation);
    app.delete(
        &format!("{list}/00000000-0000-0000-0000-000000000000"),
        &owner,
    )
    .await
    .assert_problem(404);
    app.delete(&format!("{list}/not-a-uuid"), &owner)
        .await
        .assert_problem(404);
}

#[sqlx::test]
async fn agent_tokens_of_a_missing_license_are_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let path = "/api/v1/licenses/00000000-0000-0000-0000-000000000000/agent-tokens";
    app.request(Method::POST, path, Some(&owner), None)
        .await
        .assert_problem(404);
    app.get(path, &owner).await.assert_problem(404);
    assert_eq!(app.count("agent_tokens").await, 0);
}
