//! Quiet periods in the web UI (SPEC sections 5b and 8), over HTTP with the cookie-keeping
//! [`Ui`] client of `ui.rs`: the Maintenance windows page (create, preview, delete, messages
//! next to their fields, roles, tenants), the snooze buttons, tags in the license form, the
//! tag filter and the quiet markers and count of the Monitoring page.

use crate::{helpers::*, ui::*};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Europe::Berlin;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A time as a `datetime-local` input holds it, in the test tenant's zone (Europe/Berlin).
fn typed(t: DateTime<Utc>) -> String {
    t.with_timezone(&Berlin)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// The minute a typed time means (what the server stores from it).
fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(60), 0).unwrap()
}

/// A posted form's fields, by name.
type Fields = Vec<(&'static str, String)>;

/// A one-off window over every license, from 10 minutes ago for an hour, with `csrf`.
fn one_off(csrf: &str, action: &str) -> Vec<(&'static str, String)> {
    let now = Utc::now();
    vec![
        ("csrf", csrf.to_owned()),
        ("action", action.to_owned()),
        ("name", "Firmware upgrade".to_owned()),
        ("scope", "all".to_owned()),
        ("tags", String::new()),
        ("license_keys", String::new()),
        ("kind", "one_off".to_owned()),
        ("starts_at", typed(now - Duration::minutes(10))),
        ("ends_at", typed(now + Duration::hours(1))),
        ("rrule", String::new()),
        ("duration_minutes", "120".to_owned()),
        ("timezone", "Europe/Berlin".to_owned()),
        ("dtstart", String::new()),
    ]
}

/// Every Sunday 02:00 to 04:00 in Berlin.
fn sundays(csrf: &str, action: &str) -> Vec<(&'static str, String)> {
    with(
        one_off(csrf, action),
        &[
            ("name", "Sunday patching"),
            ("kind", "recurring"),
            ("rrule", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0"),
            ("duration_minutes", "120"),
            ("timezone", "Europe/Berlin"),
        ],
    )
}

/// `fields` with some values replaced.
fn with(
    mut fields: Vec<(&'static str, String)>,
    changes: &[(&str, &str)],
) -> Vec<(&'static str, String)> {
    for (name, value) in changes {
        let field = fields
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no field {name}"));
        field.1 = (*value).to_owned();
    }
    fields
}

fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// Page text with askama's character references turned back into characters.
fn unescape(html: &str) -> String {
    html.replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// The message shown right after the input with this id (before the next label), if any.
fn message_after(html: &str, input_id: &str) -> Option<String> {
    let at = html.find(&format!(r#"id="{input_id}""#))?;
    let rest = &html[at..];
    let end = rest[1..].find("<label").map_or(rest.len(), |e| e + 1);
    let zone = &rest[..end];
    let start = zone.find(r#"class="field-error">"#)? + r#"class="field-error">"#.len();
    let len = zone[start..].find("</span>")?;
    Some(unescape(&zone[start..start + len]))
}

/// The markup of the Monitoring row of license `key`.
fn row<'a>(html: &'a str, key: &str) -> Option<&'a str> {
    let at = html.find(&format!(r#"data-license="{key}""#))?;
    let len = html[at..].find("</tr>")?;
    Some(&html[at..at + len])
}

/// The keys of the Monitoring page's rows, in order.
fn keys(html: &str) -> Vec<String> {
    html.match_indices(r#"data-license=""#)
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

async fn windows(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/v1/maintenance-windows", token).await;
    r.assert_status(200);
    r.body["items"].as_array().unwrap().clone()
}

/// A window of the tenant over every license, in force from 10 minutes ago for an hour.
async fn window_now(app: &TestApp, token: &str, name: &str, scope: Value) -> Value {
    let now = Utc::now();
    let r = app
        .post(
            "/api/v1/maintenance-windows",
            token,
            json!({"name": name, "scope": scope,
                   "starts_at": now - Duration::minutes(10), "ends_at": now + Duration::hours(1)}),
        )
        .await;
    r.assert_status(201);
    r.body
}

// --- the Maintenance windows page ---------------------------------------------------------------

#[sqlx::test]
async fn an_owner_previews_a_recurring_window_without_saving_then_creates_and_deletes_it(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let page = owner.get("/maintenance-windows").await;
    page.assert_status(200);
    assert!(
        page.text.contains(r#"href="/maintenance-windows""#),
        "nav link"
    );
    assert!(page.text.contains("No maintenance windows yet."));
    let csrf = csrf_of(&page.text);

    // Preview: the next five Sundays 02:00 to 04:00 in Berlin, and nothing saved.
    let r = owner
        .post(
            "/maintenance-windows",
            &borrowed(&sundays(&csrf, "preview")),
        )
        .await;
    r.assert_status(200);
    let preview = &r.text[r.text.find(r#"id="preview""#).expect("a preview")..];
    let preview = &preview[..preview.find("</ol>").unwrap()];
    assert!(preview.contains("(Europe/Berlin)"), "{preview}");
    let items: Vec<&str> = preview.split("<li>").skip(1).collect();
    assert_eq!(items.len(), 5, "{preview}");
    for item in &items {
        assert!(
            item.starts_with("Sun ") && item.contains("02:00 – 04:00 CE"),
            "{item}"
        );
    }
    // The form comes back as typed.
    assert!(
        r.text
            .contains(r#"value="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0""#)
    );
    assert_eq!(app.count("maintenance_windows").await, 0, "a preview saved");

    // Create.
    let r = owner
        .post("/maintenance-windows", &borrowed(&sundays(&csrf, "create")))
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/maintenance-windows"));
    let saved = windows(&app, &t.owner_token).await;
    assert_eq!(saved.len(), 1);
    let w = &saved[0];
    assert_eq!(w["name"], "Sunday patching");
    assert_eq!(w["scope"], json!({"all": true}));
    assert_eq!(w["duration_seconds"], 7200);
    assert_eq!(w["timezone"], "Europe/Berlin");
    assert!(w["rrule"].as_str().unwrap().contains("BYDAY=SU"), "{w}");
    let id = w["id"].as_str().unwrap();

    // Listed with its schedule in words and its next occurrence.
    let page = owner.get("/maintenance-windows").await;
    let listed = row_of_window(&page.text, id);
    for want in [
        "Sunday patching",
        "all licenses",
        "FREQ=WEEKLY",
        "2 h each, in Europe/Berlin",
        "Sun ",
    ] {
        assert!(listed.contains(want), "{want} missing: {listed}");
    }
    assert!(!listed.contains("in force now"), "{listed}");

    // Delete: a wrong token is refused, the right one deletes.
    let path = format!("/maintenance-windows/{id}/delete");
    let r = owner.post(&path, &[("csrf", &"f".repeat(64))]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(app.count("maintenance_windows").await, 1);
    let r = owner.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(app.count("maintenance_windows").await, 0);
    // Gone is gone.
    let r = owner.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

/// The markup of the list's row of window `id`.
fn row_of_window<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!(r#"data-window="{id}""#))
        .unwrap_or_else(|| panic!("window {id} not listed:\n{html}"));
    let len = html[at..].find("</tr>").unwrap();
    &html[at..at + len]
}

#[sqlx::test]
async fn a_one_off_window_is_read_in_the_tenants_time_zone_and_shown_in_force(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    app.create_license(&t.owner_token, "dock-1").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;
    let form = with(
        one_off(&csrf, "create"),
        &[("scope", "tags"), ("tags", "region:eu, pilot, region:eu")],
    );
    let starts = form
        .iter()
        .find(|(n, _)| *n == "starts_at")
        .unwrap()
        .1
        .clone();
    let r = owner.post("/maintenance-windows", &borrowed(&form)).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let w = &windows(&app, &t.owner_token).await[0];
    assert_eq!(w["scope"], json!({"tags": ["pilot", "region:eu"]}));
    assert_eq!(w["rrule"], Value::Null);
    // The typed local time, read in Berlin.
    let starts_at: DateTime<Utc> = w["starts_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(typed(starts_at), starts);
    assert_eq!(starts_at, minute(starts_at));
    assert_eq!(w["active"], true);
    let page = owner.get("/maintenance-windows").await;
    let listed = row_of_window(&page.text, w["id"].as_str().unwrap());
    assert!(listed.contains("in force now, until"), "{listed}");
    assert!(listed.contains("tagged pilot or region:eu"), "{listed}");
    assert!(listed.contains("once: "), "{listed}");

    // Scoped by license key.
    let form = with(
        one_off(&csrf, "create"),
        &[
            ("name", "Dock only"),
            ("scope", "licenses"),
            ("license_keys", " dock-1 "),
        ],
    );
    let r = owner.post("/maintenance-windows", &borrowed(&form)).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let saved = windows(&app, &t.owner_token).await;
    let dock = saved.iter().find(|w| w["name"] == "Dock only").unwrap();
    assert_eq!(dock["scope"]["license_ids"].as_array().unwrap().len(), 1);
    let page = owner.get("/maintenance-windows").await;
    assert!(row_of_window(&page.text, dock["id"].as_str().unwrap()).contains("dock-1"));
}

#[sqlx::test]
async fn invalid_window_fields_show_their_message_next_to_the_field_and_save_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;
    let now = Utc::now();
    let earlier = typed(now - Duration::hours(2));
    let cases: Vec<(Fields, &str, &str, &str)> = vec![
        (
            with(one_off(&csrf, "create"), &[("name", " ")]),
            "w-name",
            "",
            "an empty name",
        ),
        (
            with(
                one_off(&csrf, "create"),
                &[("scope", "tags"), ("tags", "region:eu, Bad Tag")],
            ),
            "w-tags",
            "'Bad Tag' is not a tag",
            "a bad tag",
        ),
        (
            with(
                one_off(&csrf, "create"),
                &[("scope", "tags"), ("tags", " , ")],
            ),
            "w-tags",
            "name at least one tag",
            "no tag",
        ),
        (
            with(
                one_off(&csrf, "create"),
                &[("scope", "licenses"), ("license_keys", "nope, other")],
            ),
            "w-license-keys",
            "no license has the key nope, other",
            "unknown keys",
        ),
        (
            with(one_off(&csrf, "create"), &[("ends_at", &earlier)]),
            "w-ends-at",
            "must be after the start",
            "an end before the start",
        ),
        (
            with(one_off(&csrf, "create"), &[("starts_at", "next week")]),
            "w-starts-at",
            "is not a date and time",
            "a start that is no time",
        ),
        (
            with(one_off(&csrf, "create"), &[("starts_at", "")]),
            "w-starts-at",
            "is required for a one-off window",
            "no start",
        ),
        (
            with(
                one_off(&csrf, "create"),
                &[
                    ("starts_at", "2027-03-28T02:30"),
                    ("ends_at", "2027-03-28T05:00"),
                ],
            ),
            "w-starts-at",
            "the clocks skip it",
            "a start in the spring-forward gap",
        ),
        (
            with(sundays(&csrf, "create"), &[("rrule", "FREQ=MINUTELY")]),
            "w-rrule",
            "at most hourly",
            "a rule that repeats too often",
        ),
        (
            with(sundays(&csrf, "create"), &[("rrule", "every sunday")]),
            "w-rrule",
            "is not a valid RRULE",
            "a rule that does not parse",
        ),
        (
            with(
                sundays(&csrf, "preview"),
                &[("duration_minutes", "two hours")],
            ),
            "w-duration",
            "must be a whole number of minutes",
            "a duration that is no number (preview)",
        ),
        (
            with(sundays(&csrf, "create"), &[("duration_minutes", "0")]),
            "w-duration",
            "must be from 1 to 44640 minutes (31 days)",
            "a zero duration",
        ),
        (
            with(sundays(&csrf, "preview"), &[("timezone", "Mars/Olympus")]),
            "w-timezone",
            "'Mars/Olympus' is not an IANA time zone name",
            "an unknown time zone (preview)",
        ),
        (
            with(sundays(&csrf, "create"), &[("dtstart", "soon")]),
            "w-dtstart",
            "is not a date and time",
            "a first day that is no time",
        ),
    ];
    for (fields, input, message, why) in &cases {
        let r = owner.post("/maintenance-windows", &borrowed(fields)).await;
        assert_eq!(r.status, 422, "{why}: {}", r.text);
        assert!(r.text.contains("Nothing was saved"), "{why}");
        let shown = message_after(&r.text, input)
            .unwrap_or_else(|| panic!("{why}: no message after #{input}:\n{}", r.text));
        assert!(shown.contains(message), "{why}: {shown}");
        assert!(
            r.text.contains(&format!(r#"id="{input}""#))
                && r.text.contains(r#"aria-invalid="true""#),
            "{why}"
        );
        assert!(
            !r.text.contains(r#"id="preview""#),
            "{why}: a preview of a bad window"
        );
    }
    // Several bad fields at once: each gets its message.
    let fields = with(
        sundays(&csrf, "create"),
        &[
            ("name", ""),
            ("duration_minutes", "x"),
            ("timezone", "Nowhere"),
        ],
    );
    let r = owner.post("/maintenance-windows", &borrowed(&fields)).await;
    assert_eq!(r.status, 422);
    for input in ["w-name", "w-duration", "w-timezone"] {
        assert!(
            message_after(&r.text, input).is_some(),
            "{input}: {}",
            r.text
        );
    }
    // The form is shown as typed.
    assert!(r.text.contains(r#"value="Nowhere""#));
    assert_eq!(
        app.count("maintenance_windows").await,
        0,
        "a bad window was saved"
    );
}

#[sqlx::test]
async fn a_viewer_sees_the_windows_but_cannot_create_preview_or_delete_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let w = window_now(&app, &t.owner_token, "Planned work", json!({"all": true})).await;
    app.create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;
    let mut viewer = Ui::login(&app, "viewer@acme.test").await;
    let page = viewer.get("/maintenance-windows").await;
    page.assert_status(200);
    assert!(page.text.contains("Planned work"));
    assert!(
        !page.text.contains(r#"id="create-window""#),
        "a create form for a viewer"
    );
    assert!(
        !page.text.contains("/delete"),
        "a delete button for a viewer"
    );
    let csrf = csrf_of(&page.text);
    let before = app.rows("maintenance_windows").await;
    for action in ["preview", "create"] {
        let r = viewer
            .post("/maintenance-windows", &borrowed(&one_off(&csrf, action)))
            .await;
        assert_eq!(r.status, 403, "viewer {action}: {}", r.text);
    }
    let r = viewer
        .post(
            &format!("/maintenance-windows/{}/delete", w["id"].as_str().unwrap()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(app.rows("maintenance_windows").await, before);
}

#[sqlx::test]
async fn another_tenants_window_and_licenses_are_not_found(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("bravo").await;
    let theirs = app.create_site(&a.owner_token, "alpha-1").await;
    let w = window_now(&app, &a.owner_token, "Alpha works", json!({"all": true})).await;
    let mut bob = Ui::login(&app, &b.owner_email).await;
    let page = bob.get("/maintenance-windows").await;
    assert!(!page.text.contains("Alpha works"), "{}", page.text);
    let csrf = csrf_of(&page.text);
    let before = app.rows("maintenance_windows").await;
    let licenses_before = app.rows("licenses").await;
    for path in [
        format!("/maintenance-windows/{}/delete", w["id"].as_str().unwrap()),
        format!("/maintenance-windows/{}/delete", Uuid::new_v4()),
        "/maintenance-windows/not-a-uuid/delete".to_owned(),
        format!("/licenses/{}/snooze/end", theirs.id),
    ] {
        let r = bob.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(r.status, 404, "POST {path}: {}", r.text);
    }
    let r = bob
        .post(
            &format!("/licenses/{}/snooze", theirs.id),
            &[("csrf", &csrf), ("hours", "24")],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Their license key is unknown here.
    let form = with(
        one_off(&csrf, "create"),
        &[("scope", "licenses"), ("license_keys", "alpha-1")],
    );
    let r = bob.post("/maintenance-windows", &borrowed(&form)).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message_after(&r.text, "w-license-keys").as_deref(),
        Some("no license has the key alpha-1")
    );
    assert_eq!(app.rows("maintenance_windows").await, before);
    assert_eq!(app.rows("licenses").await, licenses_before);
}

#[sqlx::test]
async fn the_new_forms_refuse_a_wrong_csrf_token_and_write_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let w = window_now(&app, &t.owner_token, "Works", json!({"all": true})).await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let bad = "f".repeat(64);
    let before = (
        app.rows("maintenance_windows").await,
        app.rows("licenses").await,
    );
    let mut posts: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            format!("/maintenance-windows/{}/delete", w["id"].as_str().unwrap()),
            vec![("csrf", bad.clone())],
        ),
        (
            format!("/licenses/{}/snooze", s.id),
            vec![("csrf", bad.clone()), ("hours", "8".to_owned())],
        ),
        (
            format!("/licenses/{}/snooze/end", s.id),
            vec![("csrf", bad.clone())],
        ),
    ];
    for action in ["create", "preview"] {
        posts.push(("/maintenance-windows".to_owned(), one_off(&bad, action)));
        posts.push(("/maintenance-windows".to_owned(), {
            let mut f = one_off(&bad, action);
            f.retain(|(n, _)| *n != "csrf");
            f
        }));
    }
    for (path, fields) in &posts {
        let r = owner.post(path, &borrowed(fields)).await;
        assert_eq!(r.status, 403, "POST {path} with a wrong csrf: {}", r.text);
    }
    assert_eq!(
        (
            app.rows("maintenance_windows").await,
            app.rows("licenses").await
        ),
        before
    );
}

// --- snooze --------------------------------------------------------------------------------------

#[sqlx::test]
async fn the_snooze_buttons_mute_a_license_and_end_snooze_ends_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let path = format!("/licenses/{}", s.id);
    let page = owner.get(&path).await;
    for hours in ["1", "8", "24"] {
        assert!(
            page.text.contains(&format!(r#"id="snooze-{hours}""#)),
            "no {hours} h button"
        );
    }
    assert!(!page.text.contains(r#"id="end-snooze""#));
    assert!(!page.text.contains(r#"id="quiet""#));
    let csrf = csrf_of(&page.text);

    // Only 1, 8 or 24 hours.
    let r = owner
        .post(
            &format!("{path}/snooze"),
            &[("csrf", &csrf), ("hours", "5")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        app.license_status(&t.owner_token, &s.id).await["quiet"],
        Value::Null
    );

    let before = Utc::now();
    let r = owner
        .post(
            &format!("{path}/snooze"),
            &[("csrf", &csrf), ("hours", "8")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some(path.as_str()));
    let after = Utc::now();
    let quiet = &app.license_status(&t.owner_token, &s.id).await["quiet"];
    assert_eq!(quiet["reason"], "snooze", "{quiet}");
    let until: DateTime<Utc> = quiet["until"].as_str().unwrap().parse().unwrap();
    assert!(
        until >= before + Duration::hours(8) && until <= after + Duration::hours(8),
        "{until}"
    );
    let page = owner.get(&path).await;
    let note = &page.text[page.text.find(r#"id="quiet""#).expect("a quiet note")..];
    let shown = until
        .with_timezone(&Berlin)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(note.starts_with(r#"id="quiet""#) && note.contains("Snoozed until"));
    assert!(
        note[..note.find("</p>").unwrap()].contains(&shown),
        "{note}"
    );
    assert!(page.text.contains(r#"id="end-snooze""#));

    let r = owner
        .post(&format!("{path}/snooze/end"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(
        app.license_status(&t.owner_token, &s.id).await["quiet"],
        Value::Null
    );
    let page = owner.get(&path).await;
    assert!(!page.text.contains("Snoozed until"));
    assert!(!page.text.contains(r#"id="end-snooze""#));

    // The Monitoring row's menu comes back to the page it was used on, never elsewhere.
    let monitoring = owner.get("/?sort=name").await;
    let mine = row(&monitoring.text, "site-1").unwrap();
    assert!(mine.contains(r#"<details class="menu">"#), "{mine}");
    assert!(mine.contains(&format!(r#"action="/licenses/{}/snooze""#, s.id)));
    assert!(
        mine.contains(r#"name="next" value="/?sort=name""#),
        "{mine}"
    );
    for (next, back) in [("/?sort=name", "/?sort=name"), ("//evil.test", "/")] {
        let r = owner
            .post(
                &format!("{path}/snooze"),
                &[("csrf", &csrf), ("hours", "1"), ("next", next)],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text);
        assert_eq!(r.header("location"), Some(back));
    }
    assert_eq!(
        app.license_status(&t.owner_token, &s.id).await["quiet"]["reason"],
        "snooze"
    );

    // A viewer sees the snooze but no buttons, and cannot snooze.
    app.create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;
    let mut viewer = Ui::login(&app, "viewer@acme.test").await;
    let page = viewer.get(&path).await;
    assert!(page.text.contains("Snoozed until"));
    assert!(!page.text.contains(r#"id="snooze-1""#) && !page.text.contains(r#"id="end-snooze""#));
    assert!(!viewer.get("/").await.text.contains(r#"class="menu""#));
    let csrf = csrf_of(&page.text);
    let before = app.rows("licenses").await;
    for (p, fields) in [
        (
            format!("{path}/snooze"),
            vec![("csrf", csrf.as_str()), ("hours", "24")],
        ),
        (format!("{path}/snooze/end"), vec![("csrf", csrf.as_str())]),
    ] {
        let r = viewer.post(&p, &fields).await;
        assert_eq!(r.status, 403, "viewer POST {p}: {}", r.text);
    }
    assert_eq!(app.rows("licenses").await, before);
}

// --- tags ----------------------------------------------------------------------------------------

fn license_fields<'a>(
    csrf: &'a str,
    key: &'a str,
    name: &'a str,
    tags: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("key", key),
        ("name", name),
        ("kind", "direct"),
        ("check_minutes", "10"),
        ("tags", tags),
    ]
}

#[sqlx::test]
async fn the_license_form_sets_and_replaces_tags_and_refuses_a_bad_one_next_to_the_field(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;

    // A bad tag: the message is next to the tags field and no license is made.
    let r = owner
        .post(
            "/licenses",
            &license_fields(&csrf, "site-1", "Site 1", "ok, Not OK"),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let shown = message_after(&r.text, "tags").expect("a message after the tags field");
    assert!(shown.contains("'Not OK' is not a tag"), "{shown}");
    assert!(r.text.contains(r#"value="ok, Not OK""#), "typed tags kept");
    assert_eq!(app.count("licenses").await, 0);
    let many = (0..21)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let r = owner
        .post(
            "/licenses",
            &license_fields(&csrf, "site-1", "Site 1", &many),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message_after(&r.text, "tags").as_deref(),
        Some("at most 20 tags")
    );
    assert_eq!(app.count("licenses").await, 0);

    let r = owner
        .post(
            "/licenses",
            &license_fields(&csrf, "site-1", "Site 1", " region:eu , pilot,region:eu,"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let id = r
        .header("location")
        .unwrap()
        .trim_start_matches("/licenses/")
        .to_owned();
    let license = app
        .get(&format!("/api/v1/licenses/{id}"), &t.owner_token)
        .await;
    assert_eq!(license.body["tags"], json!(["pilot", "region:eu"]));
    let edit = owner.get(&format!("/licenses/{id}/edit")).await;
    assert!(
        edit.text.contains(r#"value="pilot, region:eu""#),
        "{}",
        edit.text
    );
    // The Activity Status page shows them as chips that filter Monitoring.
    let page = owner.get(&format!("/licenses/{id}")).await;
    assert!(
        page.text
            .contains(r#"<a class="chip" href="/?tag=region%3Aeu">region:eu</a>"#),
        "{}",
        page.text
    );

    // An edit with a bad tag changes nothing, not even the other fields.
    let before = app.rows("licenses").await;
    let r = owner
        .post(
            &format!("/licenses/{id}/edit"),
            &license_fields(&csrf, "site-1", "Renamed", "-leading-dash"),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        message_after(&r.text, "tags")
            .unwrap()
            .contains("is not a tag")
    );
    assert_eq!(app.rows("licenses").await, before);

    // Replaced, then removed.
    let r = owner
        .post(
            &format!("/licenses/{id}/edit"),
            &license_fields(&csrf, "site-1", "Renamed", "site:hamburg"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let license = app
        .get(&format!("/api/v1/licenses/{id}"), &t.owner_token)
        .await;
    assert_eq!(license.body["tags"], json!(["site:hamburg"]));
    assert_eq!(license.body["name"], "Renamed");
    let r = owner
        .post(
            &format!("/licenses/{id}/edit"),
            &license_fields(&csrf, "site-1", "Renamed", ""),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let license = app
        .get(&format!("/api/v1/licenses/{id}"), &t.owner_token)
        .await;
    assert_eq!(license.body["tags"], json!([]));
}

#[sqlx::test]
async fn monitoring_shows_tag_chips_and_filters_by_every_tag_given_across_pages(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    for (key, tags) in [
        ("both", json!(["region:eu", "pilot"])),
        ("eu-only", json!(["region:eu"])),
        ("untagged", json!([])),
    ] {
        app.create_license_with(
            &t.owner_token,
            json!({"key": key, "name": format!("Site {key}"), "tags": tags}),
        )
        .await;
    }
    let mut owner = Ui::login(&app, &t.owner_email).await;

    let page = owner.get("/?sort=name").await;
    let page_text = unescape(&page.text);
    let both = row(&page_text, "both").unwrap();
    // A chip adds its tag to the filters in force.
    assert!(
        both.contains(r#"<a class="chip" href="/?tag=pilot&sort=name""#),
        "{both}"
    );
    assert!(!row(&page_text, "untagged").unwrap().contains("chip"));

    let page = owner.get("/?tag=region:eu&sort=name").await;
    page.assert_status(200);
    let page_text = unescape(&page.text);
    assert_eq!(keys(&page.text), ["both", "eu-only"]);
    assert!(page.text.contains(r#"id="active-filters""#));
    // The filter form carries the tag, and a chip adds to it.
    assert!(
        page.text
            .contains(r#"<input type="hidden" name="tag" value="region:eu">"#)
    );
    let both = row(&page_text, "both").unwrap();
    assert!(
        both.contains(r#"href="/?tag=region%3Aeu&tag=pilot&sort=name""#),
        "{both}"
    );
    let page = owner.get("/?tag=region%3Aeu&tag=pilot&sort=name").await;
    assert_eq!(keys(&page.text), ["both"]);
    let page_text = unescape(&page.text);
    // The chip of the filter removes itself.
    assert!(
        page_text
            .contains(r#"href="/?tag=pilot&sort=name" aria-label="Stop filtering by region:eu""#),
        "{page_text}"
    );
    // An empty tag field is no filter; a bad tag is named, not a failure.
    assert_eq!(keys(&owner.get("/?tag=&sort=name").await.text).len(), 3);
    let bad = owner.get("/?tag=Bad%20Tag").await;
    bad.assert_status(200);
    assert!(
        unescape(&bad.text).contains("'Bad Tag' is not a tag"),
        "{}",
        bad.text
    );

    // The next page keeps the tag.
    for i in 0..52 {
        app.create_license_with(
            &t.owner_token,
            json!({"key": format!("bulk-{i:02}"), "name": format!("Bulk {i:02}"), "tags": ["bulk"]}),
        )
        .await;
    }
    let first = owner.get("/?tag=bulk&sort=name").await;
    assert_eq!(keys(&first.text).len(), 50);
    let link = first.text.find(r#" id="next-page""#).expect("a next page");
    let next = first.text[..link]
        .rsplit(r#"href=""#)
        .next()
        .unwrap()
        .trim_end_matches('"')
        .replace("&#38;", "&");
    assert!(next.contains("tag=bulk"), "{next}");
    let second = owner.get(&next).await;
    second.assert_status(200);
    let rest = keys(&second.text);
    assert_eq!(rest, ["bulk-50", "bulk-51"], "{next}");
}

// --- quiet markers -------------------------------------------------------------------------------

#[sqlx::test]
async fn quiet_licenses_are_marked_and_counted_on_monitoring(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    app.create_license_with(
        &t.owner_token,
        json!({"key": "dock-1", "name": "Dock", "tags": ["dock"]}),
    )
    .await;
    let snoozed = app.create_license(&t.owner_token, "gate-1").await;
    app.create_license(&t.owner_token, "yard-1").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let page = owner.get("/").await;
    assert!(page.text.contains(r#"id="count-quiet""#));
    assert!(count_quiet(&page.text) == 0, "{}", page.text);
    assert!(!page.text.contains("badge quiet"));

    let w = window_now(
        &app,
        &t.owner_token,
        "Dock works",
        json!({"tags": ["dock"]}),
    )
    .await;
    let r = app
        .post(
            &format!(
                "/api/v1/licenses/{}/snooze",
                snoozed["id"].as_str().unwrap()
            ),
            &t.owner_token,
            json!({"until": Utc::now() + Duration::hours(3)}),
        )
        .await;
    r.assert_status(200);

    let page = owner.get("/?sort=name").await;
    assert_eq!(count_quiet(&page.text), 2);
    let ends: DateTime<Utc> = w["ends_at"].as_str().unwrap().parse().unwrap();
    let dock = row(&page.text, "dock-1").unwrap();
    assert!(
        dock.contains(&format!(
            "quiet: maintenance until {}",
            ends.with_timezone(&Berlin).format("%Y-%m-%d %H:%M:%S %Z")
        )),
        "{dock}"
    );
    assert!(
        row(&page.text, "gate-1")
            .unwrap()
            .contains("quiet: snoozed until")
    );
    assert!(!row(&page.text, "yard-1").unwrap().contains("badge quiet"));
    // The count is a filter.
    let quiet = owner.get("/?quiet=true&sort=name").await;
    assert_eq!(keys(&quiet.text), ["dock-1", "gate-1"]);
    assert_eq!(keys(&owner.get("/?quiet=false").await.text), ["yard-1"]);
    // Activity Status names the window.
    let dock_id = app
        .get("/api/v1/licenses?tag=dock", &t.owner_token)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = owner.get(&format!("/licenses/{dock_id}")).await;
    assert!(page.text.contains("In maintenance until"), "{}", page.text);
    assert!(page.text.contains("(Dock works)"), "{}", page.text);
}

/// The number in the Quiet count.
fn count_quiet(html: &str) -> i64 {
    let at = html.find(r#"id="count-quiet""#).expect("a quiet count");
    let b = &html[at..];
    let start = b.find("<b>").unwrap() + 3;
    b[start..start + b[start..].find("</b>").unwrap()]
        .parse()
        .unwrap()
}
