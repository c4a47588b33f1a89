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

const WINDOWS: &str = "/api/v1/maintenance-windows";

fn window_path(window: &Value) -> String {
    format!("{WINDOWS}/{}", id(window))
}

/// RFC 3339 of now plus `hours`.
fn in_hours(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339()
}

/// Creates a window from this body (asserts 201).
async fn create_window(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post(WINDOWS, token, body).await;
    r.assert_status(201);
    r.body
}

#[sqlx::test]
async fn a_one_off_window_can_be_created_read_listed_changed_and_deleted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let license = app.create_license(&owner, "L1").await;
    let (starts, ends) = ("2031-05-01T22:00:00Z", "2031-05-02T02:00:00Z");
    let created = create_window(
        &app,
        &owner,
        json!({"name": " Router swap ", "scope": {"license_ids": [id(&license), id(&license)]},
               "starts_at": starts, "ends_at": "2031-05-02T04:00:00+02:00"}),
    )
    .await;
    assert_eq!(created["name"], "Router swap");
    assert_eq!(created["scope"], json!({"license_ids": [id(&license)]}));
    assert_eq!(created["starts_at"], starts);
    assert_eq!(created["ends_at"], ends);
    for absent in ["rrule", "duration_seconds", "timezone"] {
        assert_eq!(created[absent], Value::Null, "{absent}");
    }
    assert_eq!(created["active"], false);
    assert_eq!(
        created["next_occurrences"],
        json!([{"starts_at": starts, "ends_at": ends}])
    );
    let path = window_path(&created);
    assert_eq!(app.get(&path, &owner).await.body, created);

    let changed = app
        .patch(
            &path,
            &owner,
            json!({"name": "Swap", "scope": {"all": true}, "ends_at": "2031-05-02T03:00:00Z"}),
        )
        .await;
    changed.assert_status(200);
    assert_eq!(changed.body["name"], "Swap");
    assert_eq!(changed.body["scope"], json!({"all": true}));
    assert_eq!(changed.body["starts_at"], starts, "kept");
    assert_eq!(changed.body["ends_at"], "2031-05-02T03:00:00Z");
    // A PATCH may turn it into a recurring window (and back).
    let recurring = app
        .patch(
            &path,
            &owner,
            json!({"rrule": "FREQ=DAILY;BYHOUR=3", "duration_seconds": 600, "timezone": "UTC"}),
        )
        .await;
    recurring.assert_status(200);
    assert_eq!(recurring.body["ends_at"], Value::Null);
    assert_eq!(recurring.body["duration_seconds"], 600);
    let back = app
        .patch(&path, &owner, json!({"starts_at": starts, "ends_at": ends}))
        .await;
    back.assert_status(200);
    assert_eq!(back.body["rrule"], Value::Null);
    assert_eq!(back.body["timezone"], Value::Null);

    // Listed in creation order, page by page.
    for i in 0..2 {
        create_window(
            &app,
            &owner,
            json!({"name": format!("w{i}"), "scope": {"tags": ["a"]}, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    }
    let first = app.get(&format!("{WINDOWS}?limit=2"), &owner).await;
    first.assert_status(200);
    let names: Vec<&str> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Swap", "w0"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("{WINDOWS}?limit=2&cursor={cursor}"), &owner)
        .await;
    assert_eq!(second.body["items"][0]["name"], "w1");
    assert_eq!(second.body["next_cursor"], Value::Null);

    app.delete(&path, &owner).await.assert_status(204);
    app.get(&path, &owner).await.assert_problem(404);
    app.delete(&path, &owner).await.assert_problem(404);
    assert_eq!(app.count("maintenance_windows").await, 2);
}

#[sqlx::test]
async fn a_recurring_window_is_read_in_its_time_zone_across_a_dst_change(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    // Sundays 02:30 in Berlin from March 14, 2027: on March 28 the clocks jump from 02:00 to
    // 03:00, so that occurrence starts at 03:30 CEST (the gap is shifted, domain::quiet).
    let w = create_window(
        &app,
        &owner,
        json!({"name": "Patching", "scope": {"all": true}, "rrule": "RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30",
               "duration_seconds": 3600, "timezone": "Europe/Berlin", "starts_at": "2027-03-13T23:00:00Z"}),
    )
    .await;
    assert_eq!(w["timezone"], "Europe/Berlin");
    assert_eq!(w["starts_at"], "2027-03-13T23:00:00Z");
    assert_eq!(w["ends_at"], Value::Null);
    // Normalised: without `RRULE:`, with the seconds DTSTART filled in.
    assert_eq!(
        w["rrule"],
        "FREQ=WEEKLY;BYHOUR=2;BYMINUTE=30;BYSECOND=0;BYDAY=SU"
    );
    let starts: Vec<&str> = w["next_occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["starts_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-14T01:30:00Z", // 02:30 CET
            "2027-03-21T01:30:00Z",
            "2027-03-28T01:30:00Z", // 03:30 CEST: 02:30 does not exist that night
            "2027-04-04T00:30:00Z", // 02:30 CEST
            "2027-04-11T00:30:00Z",
        ]
    );
    assert_eq!(
        w["next_occurrences"][0]["ends_at"], "2027-03-14T02:30:00Z",
        "an occurrence lasts duration_seconds"
    );

    // Without starts_at the rule starts at today's midnight in its zone: no BYMINUTE means :00.
    let daily = create_window(
        &app,
        &owner,
        json!({"name": "Nightly", "scope": {"all": true}, "rrule": "FREQ=DAILY;BYHOUR=4",
               "duration_seconds": 1800, "timezone": "America/New_York"}),
    )
    .await;
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let first: chrono::DateTime<chrono::Utc> = daily["next_occurrences"][0]["starts_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        first.with_timezone(&tz).format("%H:%M:%S").to_string(),
        "04:00:00"
    );
    let dtstart: chrono::DateTime<chrono::Utc> =
        daily["starts_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        dtstart.with_timezone(&tz).format("%H:%M:%S").to_string(),
        "00:00:00"
    );
    assert_eq!(daily["next_occurrences"].as_array().unwrap().len(), 5);
}

#[sqlx::test]
async fn invalid_windows_are_refused_with_a_pointer_to_each_problem(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let mine = app.create_license(&owner, "L1").await;
    let other = app.create_tenant("other").await.owner_token;
    let theirs = app.create_license(&other, "L1").await;
    let made_up = uuid::Uuid::now_v7().to_string();
    let all = json!({"all": true});
    let one_off = |scope: Value| json!({"name": "w", "scope": scope, "starts_at": "2031-01-01T00:00:00Z", "ends_at": "2031-01-01T01:00:00Z"});
    let recurring = |rrule: &str, duration: i64, tz: &str| json!({"name": "w", "scope": {"all": true}, "rrule": rrule, "duration_seconds": duration, "timezone": tz});
    let with = |mut body: Value, changes: Value| {
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let many_ids: Vec<String> = (0..1001).map(|_| id(&mine).to_owned()).collect();
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            with(one_off(all.clone()), json!({"name": ""})),
            vec!["/name"],
            "empty name",
        ),
        (
            with(one_off(all.clone()), json!({"name": "n".repeat(201)})),
            vec!["/name"],
            "201 characters",
        ),
        (
            json!({"scope": all, "starts_at": "2031-01-01T00:00:00Z", "ends_at": "2031-01-01T01:00:00Z"}),
            vec!["/name"],
            "no name",
        ),
        (
            json!({"name": "w", "starts_at": "2031-01-01T00:00:00Z", "ends_at": "2031-01-01T01:00:00Z"}),
            vec!["/scope"],
            "no scope",
        ),
        (one_off(json!({})), vec!["/scope"], "an empty scope"),
        (
            one_off(json!({"all": true, "tags": ["a"]})),
            vec!["/scope"],
            "two scope forms",
        ),
        (
            one_off(json!({"all": false})),
            vec!["/scope/all"],
            "all: false",
        ),
        (
            one_off(json!({"license_ids": []})),
            vec!["/scope/license_ids"],
            "no licenses",
        ),
        (
            one_off(json!({"license_ids": many_ids})),
            vec!["/scope/license_ids"],
            "1001 licenses",
        ),
        (
            one_off(json!({"license_ids": [id(&mine), made_up]})),
            vec!["/scope/license_ids/1"],
            "an unknown license",
        ),
        (
            one_off(json!({"license_ids": [id(&mine), id(&mine), made_up]})),
            vec!["/scope/license_ids/2"],
            "the index in the request, duplicates counted",
        ),
        (
            one_off(json!({"license_ids": [id(&theirs), id(&mine)]})),
            vec!["/scope/license_ids/0"],
            "another tenant's license",
        ),
        (
            one_off(json!({"license_ids": ["not-a-uuid"]})),
            vec!["/scope/license_ids/0"],
            "not a UUID",
        ),
        (
            one_off(json!({"tags": ["ok", "Bad"]})),
            vec!["/scope/tags/1"],
            "a bad tag",
        ),
        (one_off(json!({"tags": []})), vec!["/scope/tags"], "no tags"),
        (
            one_off(json!({"region": "eu"})),
            vec!["/scope/region"],
            "an unknown scope field",
        ),
        (
            json!({"name": "w", "scope": all}),
            vec!["/starts_at", "/ends_at"],
            "no schedule",
        ),
        (
            json!({"name": "w", "scope": all, "starts_at": "2031-01-01T00:00:00Z"}),
            vec!["/ends_at"],
            "no end",
        ),
        (
            with(
                one_off(all.clone()),
                json!({"ends_at": "2031-01-01T00:00:00Z"}),
            ),
            vec!["/ends_at"],
            "ends when it starts",
        ),
        (
            with(
                one_off(all.clone()),
                json!({"ends_at": "2031-02-01T00:00:01Z"}),
            ),
            vec!["/ends_at"],
            "over 31 days",
        ),
        (
            with(one_off(all.clone()), json!({"starts_at": "yesterday"})),
            vec!["/starts_at"],
            "not a time",
        ),
        (
            with(one_off(all.clone()), json!({"rrule": "FREQ=DAILY"})),
            vec!["/rrule"],
            "one-off and recurring mixed",
        ),
        (
            with(one_off(all.clone()), json!({"colour": "red"})),
            vec!["/colour"],
            "an unknown field",
        ),
        (
            json!({"name": "w", "scope": all, "rrule": "FREQ=DAILY"}),
            vec!["/duration_seconds", "/timezone"],
            "recurring without duration and zone",
        ),
        (
            recurring("FREQ=SOMETIMES", 60, "UTC"),
            vec!["/rrule"],
            "not an RRULE",
        ),
        (
            recurring("FREQ=MINUTELY", 60, "UTC"),
            vec!["/rrule"],
            "more often than hourly",
        ),
        (
            recurring("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", 60, "UTC"),
            vec!["/rrule"],
            "no occurrence",
        ),
        (
            recurring("FREQ=DAILY", 0, "UTC"),
            vec!["/duration_seconds"],
            "zero seconds",
        ),
        (
            recurring("FREQ=DAILY", 31 * 86_400 + 1, "UTC"),
            vec!["/duration_seconds"],
            "over 31 days",
        ),
        (
            recurring("FREQ=DAILY", 60, "Mars/Olympus"),
            vec!["/timezone"],
            "not a time zone",
        ),
    ];
    for (body, pointers, why) in cases {
        let r = app.post(WINDOWS, &owner, body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), pointers, "{why}: {}", r.text);
    }
    assert_eq!(app.count("maintenance_windows").await, 0);

    // A PATCH is checked against the stored window.
    let w = create_window(&app, &owner, one_off(all.clone())).await;
    let path = window_path(&w);
    for (body, pointers, why) in [
        (
            json!({"ends_at": "2030-12-31T00:00:00Z"}),
            vec!["/ends_at"],
            "before the stored start",
        ),
        (
            json!({"rrule": "FREQ=DAILY"}),
            vec!["/duration_seconds", "/timezone"],
            "recurring needs all three",
        ),
        (
            json!({"ends_at": "2031-01-01T02:00:00Z", "timezone": "UTC"}),
            vec!["/timezone"],
            "mixed",
        ),
        (
            json!({"scope": {"license_ids": [id(&theirs)]}}),
            vec!["/scope/license_ids/0"],
            "another tenant's license",
        ),
        (json!({"name": " "}), vec!["/name"], "a blank name"),
    ] {
        let r = app.patch(&path, &owner, body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), pointers, "{why}: {}", r.text);
    }
    assert_eq!(app.get(&path, &owner).await.body, w, "nothing changed");
}

#[sqlx::test]
async fn windows_are_the_tenants_own_and_only_admins_write_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_populated_tenant("acme", "L1", "viewer").await;
    let owner = &t.tenant.owner_token;
    let viewer = app.login("viewer@acme.test", PASSWORD).await;
    let other = app.create_tenant("other").await.owner_token;
    let body = json!({"name": "w", "scope": {"all": true}, "starts_at": in_hours(1), "ends_at": in_hours(2)});
    let mine = create_window(&app, owner, body.clone()).await;
    let theirs = create_window(&app, &other, body.clone()).await;

    // Another tenant's window is not found, for any method.
    let path = window_path(&theirs);
    app.get(&path, owner).await.assert_problem(404);
    app.patch(&path, owner, json!({"name": "x"}))
        .await
        .assert_problem(404);
    app.delete(&path, owner).await.assert_problem(404);
    let listed = app.get(WINDOWS, owner).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["id"], mine["id"]);
    app.get(&format!("{WINDOWS}/not-a-uuid"), owner)
        .await
        .assert_problem(404);

    // A viewer reads but does not write.
    let path = window_path(&mine);
    app.get(&path, &viewer).await.assert_status(200);
    app.get(WINDOWS, &viewer).await.assert_status(200);
    app.post(WINDOWS, &viewer, body).await.assert_problem(403);
    app.patch(&path, &viewer, json!({"name": "x"}))
        .await
        .assert_problem(403);
    app.delete(&path, &viewer).await.assert_problem(403);
    assert_eq!(app.get(&path, owner).await.body, mine);
}

#[sqlx::test]
async fn changing_a_window_pulls_the_sweeps_next_check_forward(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let license = app.create_license(&owner, "L1").await;
    app.put_notification_settings(
        &owner,
        id(&license),
        json!({"enabled": true, "recipients": ["ops@acme.test"]}),
    )
    .await
    .assert_status(200);
    let far = chrono::Utc::now() + chrono::Duration::days(30);
    let push_back = async || {
        sqlx::query("UPDATE notification_settings SET next_check_at = $1")
            .bind(far)
            .execute(&app.pool)
            .await
            .unwrap();
    };
    let next_check = async || -> chrono::DateTime<chrono::Utc> {
        sqlx::query_scalar("SELECT next_check_at FROM notification_settings")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let body = json!({"name": "w", "scope": {"tags": ["a"]}, "starts_at": in_hours(1), "ends_at": in_hours(2)});
    push_back().await;
    let w = create_window(&app, &owner, body).await;
    assert!(next_check().await < far, "create");
    push_back().await;
    app.patch(&window_path(&w), &owner, json!({"name": "x"}))
        .await
        .assert_status(200);
    assert!(next_check().await < far, "update");
    push_back().await;
    app.delete(&window_path(&w), &owner)
        .await
        .assert_status(204);
    assert!(next_check().await < far, "delete");
    push_back().await;
    app.patch(
        &format!("/api/v1/licenses/{}", id(&license)),
        &owner,
        json!({"tags": ["a"]}),
    )
    .await
    .assert_status(200);
    assert!(next_check().await < far, "new tags");
}

fn snooze_path(license: &Value) -> String {
    format!("/api/v1/licenses/{}/snooze", id(license))
}

/// The `snoozed_at` and `snoozed_until` columns of a license.
async fn snooze_columns(app: &TestApp, license: &Value) -> (Option<DateTime>, Option<DateTime>) {
    sqlx::query_as("SELECT snoozed_at, snoozed_until FROM licenses WHERE id = $1::uuid")
        .bind(id(license))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

type DateTime = chrono::DateTime<chrono::Utc>;

fn time(v: &Value) -> DateTime {
    v.as_str().unwrap().parse().unwrap()
}

#[sqlx::test]
async fn a_snooze_is_set_extended_ended_early_and_checked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_populated_tenant("acme", "L1", "viewer").await;
    let owner = &t.tenant.owner_token;
    let license = app
        .get(&format!("/api/v1/licenses/{}", t.site.id), owner)
        .await
        .body;
    let path = snooze_path(&license);

    let before = chrono::Utc::now();
    let r = app.post(&path, owner, json!({"until": in_hours(1)})).await;
    r.assert_status(200);
    assert_eq!(r.body["license_id"], license["id"]);
    let snoozed_at = time(&r.body["snoozed_at"]);
    assert!(snoozed_at >= before - chrono::Duration::seconds(1));
    assert!(time(&r.body["until"]) > snoozed_at + chrono::Duration::minutes(59));
    let status = app.license_status(owner, id(&license)).await;
    assert_eq!(
        status["quiet"],
        json!({"reason": "snooze", "until": r.body["until"], "window_id": null})
    );
    assert_eq!(status["status"], "not_installed", "the status is the truth");

    // Snoozing again while snoozed moves the end and keeps the start.
    let longer = app.post(&path, owner, json!({"until": in_hours(8)})).await;
    longer.assert_status(200);
    assert_eq!(longer.body["snoozed_at"], r.body["snoozed_at"]);
    let shorter = app.post(&path, owner, json!({"until": in_hours(2)})).await;
    assert_eq!(shorter.body["snoozed_at"], r.body["snoozed_at"]);
    assert_eq!(
        app.license_status(owner, id(&license)).await["quiet"]["until"],
        shorter.body["until"]
    );

    // Ended early: the end moves to now, the time it was in force stays on record.
    app.delete(&path, owner).await.assert_status(204);
    let (at, until) = snooze_columns(&app, &license).await;
    assert_eq!(at, Some(snoozed_at));
    let until = until.unwrap();
    assert!(until >= snoozed_at && until <= chrono::Utc::now());
    assert_eq!(
        app.license_status(owner, id(&license)).await["quiet"],
        Value::Null
    );
    // Idempotent, also for a license never snoozed.
    app.delete(&path, owner).await.assert_status(204);
    assert_eq!(snooze_columns(&app, &license).await, (at, Some(until)));
    let fresh = app.create_license(owner, "L2").await;
    app.delete(&snooze_path(&fresh), owner)
        .await
        .assert_status(204);
    assert_eq!(snooze_columns(&app, &fresh).await, (None, None));
    // A new snooze after the end starts anew.
    let again = app.post(&path, owner, json!({"until": in_hours(1)})).await;
    assert!(time(&again.body["snoozed_at"]) >= until);

    for (body, pointer, why) in [
        (json!({"until": in_hours(-1)}), "/until", "in the past"),
        (
            json!({"until": in_hours(31 * 24 + 1)}),
            "/until",
            "more than 31 days ahead",
        ),
        (json!({"until": "tomorrow"}), "/until", "not a time"),
        (json!({}), "/until", "missing"),
        (
            json!({"until": in_hours(1), "for": "ever"}),
            "/for",
            "an unknown field",
        ),
    ] {
        let r = app.post(&path, owner, body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), vec![pointer], "{why}");
    }
    assert_eq!(
        app.post(&path, owner, json!({"until": in_hours(31 * 24 - 1)}))
            .await
            .status,
        200
    );

    // Roles and tenants.
    let viewer = app.login("viewer@acme.test", PASSWORD).await;
    app.post(&path, &viewer, json!({"until": in_hours(1)}))
        .await
        .assert_problem(403);
    app.delete(&path, &viewer).await.assert_problem(403);
    let other = app.create_tenant("other").await.owner_token;
    app.post(&path, &other, json!({"until": in_hours(1)}))
        .await
        .assert_problem(404);
    app.delete(&path, &other).await.assert_problem(404);
    app.post(
        "/api/v1/licenses/not-a-uuid/snooze",
        owner,
        json!({"until": in_hours(1)}),
    )
    .await
    .assert_problem(404);
}

#[sqlx::test]
async fn snoozing_and_ending_a_snooze_pull_the_sweeps_next_check_forward(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let license = app.create_license(&owner, "L1").await;
    let other = app.create_license(&owner, "L2").await;
    for l in [&license, &other] {
        app.put_notification_settings(
            &owner,
            id(l),
            json!({"enabled": true, "recipients": ["ops@acme.test"]}),
        )
        .await
        .assert_status(200);
    }
    // PostgreSQL keeps microseconds.
    let far =
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now() + chrono::Duration::days(30), 6);
    let push_back = async || {
        sqlx::query("UPDATE notification_settings SET next_check_at = $1")
            .bind(far)
            .execute(&app.pool)
            .await
            .unwrap();
    };
    let next_check = async |l: &Value| -> DateTime {
        sqlx::query_scalar(
            "SELECT next_check_at FROM notification_settings WHERE license_id = $1::uuid",
        )
        .bind(id(l))
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    push_back().await;
    app.post(
        &snooze_path(&license),
        &owner,
        json!({"until": in_hours(1)}),
    )
    .await
    .assert_status(200);
    assert!(next_check(&license).await < far, "snooze");
    assert_eq!(next_check(&other).await, far, "only the snoozed license");
    push_back().await;
    app.delete(&snooze_path(&license), &owner)
        .await
        .assert_status(204);
    assert!(next_check(&license).await < far, "end of the snooze");
    assert_eq!(next_check(&other).await, far);
}

/// `quiet` of every license of `GET /licenses`, by key.
async fn quiet_by_key(app: &TestApp, token: &str, query: &str) -> Vec<(String, Value)> {
    let r = app.get(&format!("/api/v1/licenses?{query}"), token).await;
    r.assert_status(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["key"].as_str().unwrap().to_owned(), l["quiet"].clone()))
        .collect()
}

#[sqlx::test]
async fn quiet_says_why_and_until_when_in_the_status_and_the_list(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let other = app.create_tenant("other").await.owner_token;
    let a = app
        .create_license_with(&owner, json!({"key": "A", "name": "A"}))
        .await;
    let b = app
        .create_license_with(
            &owner,
            json!({"key": "B", "name": "B", "tags": ["site:b", "x"]}),
        )
        .await;
    let c = app
        .create_license_with(&owner, json!({"key": "C", "name": "C", "tags": ["x"]}))
        .await;
    let d = app
        .create_license_with(&owner, json!({"key": "D", "name": "D"}))
        .await;

    // Nothing quiet yet; another tenant's windows mute nothing here, and neither do windows
    // that are not in force now.
    create_window(&app, &other, json!({"name": "theirs", "scope": {"all": true}, "starts_at": in_hours(-1), "ends_at": in_hours(1)})).await;
    create_window(&app, &owner, json!({"name": "later", "scope": {"all": true}, "starts_at": in_hours(5), "ends_at": in_hours(6)})).await;
    create_window(&app, &owner, json!({"name": "over", "scope": {"all": true}, "starts_at": in_hours(-3), "ends_at": in_hours(-2)})).await;
    for (key, quiet) in quiet_by_key(&app, &owner, "").await {
        assert_eq!(quiet, Value::Null, "{key}");
    }

    // A's own window (one-off, covering now), B's tag, D's snooze; C stays loud.
    let by_id = create_window(&app, &owner, json!({"name": "A only", "scope": {"license_ids": [id(&a)]}, "starts_at": in_hours(-1), "ends_at": in_hours(1)})).await;
    assert_eq!(by_id["active"], true);
    let by_tag = create_window(&app, &owner, json!({"name": "site b", "scope": {"tags": ["site:b"]}, "starts_at": in_hours(-1), "ends_at": in_hours(2)})).await;
    let snooze = app
        .post(&snooze_path(&d), &owner, json!({"until": in_hours(4)}))
        .await
        .body;
    let maintenance =
        |w: &Value| json!({"reason": "maintenance", "until": w["ends_at"], "window_id": w["id"]});
    let snoozed = json!({"reason": "snooze", "until": snooze["until"], "window_id": null});
    let expected = vec![
        ("A".to_owned(), maintenance(&by_id)),
        ("B".to_owned(), maintenance(&by_tag)),
        ("C".to_owned(), Value::Null),
        ("D".to_owned(), snoozed.clone()),
    ];
    assert_eq!(quiet_by_key(&app, &owner, "").await, expected);
    for (license, (_, quiet)) in [&a, &b, &c, &d].into_iter().zip(&expected) {
        assert_eq!(
            &app.license_status(&owner, id(license)).await["quiet"],
            quiet
        );
        let one = app
            .get(&format!("/api/v1/licenses/{}", id(license)), &owner)
            .await;
        assert_eq!(&one.body["quiet"], quiet);
    }

    // ?quiet= filters on it, page by page.
    assert_eq!(
        all_keys(&app, &owner, "quiet=true&limit=1").await,
        ["A", "B", "D"]
    );
    assert_eq!(all_keys(&app, &owner, "quiet=false").await, ["C"]);
    assert_eq!(all_keys(&app, &owner, "quiet=true&tag=x").await, ["B"]);
    let r = app.get("/api/v1/licenses?quiet=yes", &owner).await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), vec!["/query/quiet"]);

    // A tenant-wide window in force: everyone is quiet. Each names the span in force that lasts
    // longest: the tenant-wide window, except for D, whose snooze lasts longer.
    let everyone = create_window(&app, &owner, json!({"name": "all", "scope": {"all": true}, "starts_at": in_hours(-1), "ends_at": in_hours(3)})).await;
    assert_eq!(
        quiet_by_key(&app, &owner, "").await,
        vec![
            ("A".to_owned(), maintenance(&everyone)),
            ("B".to_owned(), maintenance(&everyone)),
            ("C".to_owned(), maintenance(&everyone)),
            ("D".to_owned(), snoozed),
        ]
    );
    assert_eq!(
        all_keys(&app, &owner, "quiet=false").await,
        Vec::<String>::new()
    );
    assert_eq!(all_keys(&app, &owner, "quiet=true").await.len(), 4);

    // Back to back: C's tenant-wide window ends at +3 h where its own begins, so it is quiet
    // until the end of the second.
    let follow = create_window(&app, &owner, json!({"name": "C next", "scope": {"license_ids": [id(&c)]}, "starts_at": everyone["ends_at"], "ends_at": in_hours(7)})).await;
    let c_quiet = &app.license_status(&owner, id(&c)).await["quiet"];
    assert_eq!(c_quiet["window_id"], everyone["id"]);
    assert_eq!(c_quiet["until"], follow["ends_at"]);

    // Deleting the windows and ending the snooze: quiet again is null.
    for w in [&by_id, &by_tag, &everyone, &follow] {
        app.delete(&window_path(w), &owner).await.assert_status(204);
    }
    app.delete(&snooze_path(&d), &owner)
        .await
        .assert_status(204);
    for (key, quiet) in quiet_by_key(&app, &owner, "").await {
        assert_eq!(quiet, Value::Null, "{key}");
    }
    assert_eq!(all_keys(&app, &owner, "quiet=false").await.len(), 4);
}

#[sqlx::test]
async fn a_recurring_window_in_force_now_makes_its_licenses_quiet(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let license = app
        .create_license_with(&owner, json!({"key": "A", "name": "A", "tags": ["night"]}))
        .await;
    // Hourly, each occurrence lasting the whole hour: one is always in force.
    let w = create_window(
        &app,
        &owner,
        json!({"name": "always", "scope": {"tags": ["night"]}, "rrule": "FREQ=HOURLY",
        "duration_seconds": 3600, "timezone": "Asia/Kolkata", "starts_at": in_hours(-30)}),
    )
    .await;
    assert_eq!(w["active"], true);
    let quiet = &app.license_status(&owner, id(&license)).await["quiet"];
    assert_eq!(quiet["reason"], "maintenance");
    assert_eq!(quiet["window_id"], w["id"]);
    // Back-to-back occurrences all the way to the 32-day horizon.
    assert!(time(&quiet["until"]) > chrono::Utc::now() + chrono::Duration::days(31));
}
