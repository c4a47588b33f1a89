//! Quiet periods (SPEC section 5b) through the API: license tags and the tag filter,
//! maintenance windows (one-off and RRULE, with their preview), snoozes, and the `quiet` field
//! of the status and the license list.

use crate::helpers::*;
use serde_json::{Value, json};
use sqlx::PgPool;

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
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

/// Every key of `GET /licenses?<query>`, page by page.
async fn all_keys(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (mut keys, mut next) = page(app, token, query).await;
    while let Some(cursor) = next {
        let (more, after) = page(app, token, &format!("{query}&cursor={cursor}")).await;
        keys.extend(more);
        next = after;
    }
    keys
}

#[sqlx::test]
async fn tags_are_set_on_create_replaced_on_update_and_shown_everywhere(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let created = app
        .create_license_with(
            &owner,
            json!({"key": "L1", "name": "Depot", "tags": ["site:hamburg", "region:eu", "region:eu"]}),
        )
        .await;
    assert_eq!(
        created["tags"],
        json!(["region:eu", "site:hamburg"]),
        "sorted, duplicates dropped"
    );
    let path = format!("/api/v1/licenses/{}", id(&created));
    assert_eq!(app.get(&path, &owner).await.body["tags"], created["tags"]);
    let status = app.license_status(&owner, id(&created)).await;
    assert_eq!(status["tags"], created["tags"]);
    let list = app.get("/api/v1/licenses", &owner).await;
    assert_eq!(list.body["items"][0]["tags"], created["tags"]);

    // A PATCH without tags keeps them; with tags replaces them; [] removes them.
    let renamed = app.patch(&path, &owner, json!({"name": "Depot 2"})).await;
    assert_eq!(renamed.body["tags"], created["tags"]);
    let retagged = app.patch(&path, &owner, json!({"tags": ["x"]})).await;
    retagged.assert_status(200);
    assert_eq!(retagged.body["tags"], json!(["x"]));
    let cleared = app.patch(&path, &owner, json!({"tags": []})).await;
    assert_eq!(cleared.body["tags"], json!([]));
    // Without tags a license has none.
    assert_eq!(app.create_license(&owner, "L2").await["tags"], json!([]));
}

#[sqlx::test]
async fn invalid_tags_are_refused_with_a_pointer_to_each(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let license = app.create_license(&owner, "L1").await;
    let path = format!("/api/v1/licenses/{}", id(&license));
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for (tags, pointers, why) in [
        (json!(["a", "b", "c", "Bad"]), vec!["/tags/3"], "upper case"),
        (
            json!(["-a"]),
            vec!["/tags/0"],
            "must start with a letter or digit",
        ),
        (
            json!(["ok", "a b", "é"]),
            vec!["/tags/1", "/tags/2"],
            "space and non-ASCII",
        ),
        (json!(["x".repeat(65)]), vec!["/tags/0"], "65 characters"),
        (json!([""]), vec!["/tags/0"], "empty"),
        (json!(many), vec!["/tags"], "21 tags"),
        (json!(["a", 5]), vec!["/tags/1"], "not a string"),
        (json!("a"), vec!["/tags"], "not an array"),
    ] {
        let body = json!({"key": "L9", "name": "n", "tags": tags});
        let r = app.post("/api/v1/licenses", &owner, body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), pointers, "create: {why}");
        let r = app.patch(&path, &owner, json!({"tags": tags})).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), pointers, "update: {why}");
    }
    // 20 tags of 64 characters are fine.
    let twenty: Vec<String> = (0..20).map(|i| format!("{i:0>64}")).collect();
    app.patch(&path, &owner, json!({"tags": twenty}))
        .await
        .assert_status(200);
    assert_eq!(app.count("licenses").await, 1);
}

#[sqlx::test]
async fn the_list_filters_by_tags_all_of_which_must_match(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    // 12 licenses: every one has a region; every third is in Hamburg.
    for i in 0..12 {
        let region = if i % 2 == 0 { "region:eu" } else { "region:us" };
        let mut tags = vec![region.to_owned()];
        if i % 3 == 0 {
            tags.push("site:hamburg".to_owned());
        }
        app.create_license_with(
            &owner,
            json!({"key": format!("L{i:02}"), "name": format!("Site {i:02}"), "kind": if i < 6 { "direct" } else { "cloud" }, "tags": tags}),
        )
        .await;
    }
    let keys = |v: &[i32]| -> Vec<String> { v.iter().map(|i| format!("L{i:02}")).collect() };
    assert_eq!(
        all_keys(&app, &owner, "tag=region:eu&limit=2").await,
        keys(&[0, 2, 4, 6, 8, 10])
    );
    // Both tags: the EU licenses in Hamburg only, also across pages of one.
    assert_eq!(
        all_keys(&app, &owner, "tag=region:eu&tag=site:hamburg&limit=1").await,
        keys(&[0, 6])
    );
    assert_eq!(
        all_keys(
            &app,
            &owner,
            "tag=site:hamburg&tag=region:eu&sort=-key&limit=1"
        )
        .await,
        keys(&[6, 0])
    );
    // With the other filters and another sort.
    assert_eq!(
        all_keys(
            &app,
            &owner,
            "tag=site:hamburg&kind=cloud&sort=-created_at&limit=1"
        )
        .await,
        keys(&[9, 6])
    );
    assert_eq!(
        all_keys(&app, &owner, "tag=site:hamburg&q=site%2003").await,
        keys(&[3])
    );
    assert!(all_keys(&app, &owner, "tag=nowhere").await.is_empty());
    assert_eq!(all_keys(&app, &owner, "limit=5").await.len(), 12);

    for (query, pointer) in [
        ("tag=Bad", "/query/tag"),
        ("tag=", "/query/tag"),
        ("tag=ok&tag=a%20b", "/query/tag"),
        ("kind=direct&kind=cloud", "/query/kind"),
    ] {
        let r = app.get(&format!("/api/v1/licenses?{query}"), &owner).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), vec![pointer], "{query}");
    }
}

#[sqlx::test]
async fn a_viewer_cannot_change_tags(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_populated_tenant("acme", "L1", "viewer").await;
    let viewer = app.login("viewer@acme.test", PASSWORD).await;
    let path = format!("/api/v1/licenses/{}", t.site.id);
    app.patch(&path, &viewer, json!({"tags": ["x"]}))
        .await
        .assert_problem(403);
    assert_eq!(app.get(&path, &viewer).await.body["tags"], json!([]));
}
