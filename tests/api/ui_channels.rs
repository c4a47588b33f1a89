//! The Channels page of the web UI (SPEC sections 5a and 8), over HTTP with the
//! cookie-keeping [`Ui`] client of `ui.rs`: create and edit per kind (secrets never shown,
//! kept when left empty), messages next to their fields, delete with its confirmation step
//! (and its refusal), the test button's outcome, roles, tenants and CSRF.

use crate::{helpers::*, smtp::SmtpServer, ui::*};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

async fn channels(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/v1/channels", token).await;
    r.assert_status(200);
    r.body["items"].as_array().unwrap().clone()
}

async fn stored(app: &TestApp, id: &str) -> Value {
    sqlx::query_scalar::<_, Value>("SELECT config FROM channels WHERE id = $1")
        .bind(Uuid::parse_str(id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap()
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

#[sqlx::test]
async fn an_owner_creates_a_webhook_channel_edits_it_keeping_its_secret_and_deletes_it_after_confirming(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let page = owner.get("/channels").await;
    page.assert_status(200);
    assert!(page.text.contains(r#"href="/channels""#), "nav link");
    assert!(page.text.contains("No channels yet."));
    for kind in ["email", "webhook", "slack", "teams", "pagerduty", "ntfy"] {
        assert!(
            page.text.contains(&format!(r#"<option value="{kind}">"#)),
            "the kind chooser offers {kind}"
        );
    }
    let csrf = csrf_of(&page.text);

    let form = owner.get("/channels/new?kind=webhook").await;
    form.assert_status(200);
    assert!(form.text.contains(r#"id="c-url""#) && form.text.contains(r#"id="c-secret""#));
    assert!(
        !form.text.contains(r#"id="c-recipients""#),
        "only the kind's fields"
    );
    let secret = "whsec-from-the-form-42";
    let r = owner
        .post(
            "/channels",
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "Ops hook"),
                ("url", "https://93.184.216.34/hook/secret-path"),
                ("secret", secret),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/channels"));
    let saved = channels(&app, &t.owner_token).await;
    assert_eq!(saved.len(), 1);
    let id = saved[0]["id"].as_str().unwrap().to_owned();

    // Listed with its kind and origin, never its path or secret.
    let page = owner.get("/channels").await;
    let row_at = page.text.find(&format!(r#"data-channel="{id}""#)).unwrap();
    let row = &page.text[row_at..row_at + page.text[row_at..].find("</tr>").unwrap()];
    assert!(row.contains("Ops hook") && row.contains("Webhook"), "{row}");
    assert!(row.contains("https://93.184.216.34"), "{row}");
    assert!(!page.text.contains("secret-path") && !page.text.contains(secret));

    // The edit form shows the secret as a placeholder only; left empty, it is kept.
    let edit = owner.get(&format!("/channels/{id}/edit")).await;
    edit.assert_status(200);
    assert!(!edit.text.contains(secret) && !edit.text.contains("secret-path"));
    assert!(
        edit.text.contains(r#"placeholder="[redacted]""#),
        "{}",
        edit.text
    );
    let r = owner
        .post(
            &format!("/channels/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "Ops hook v2"),
                ("url", ""),
                ("secret", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(
        stored(&app, &id).await,
        json!({"url": "https://93.184.216.34/hook/secret-path", "secret": secret})
    );
    assert_eq!(
        channels(&app, &t.owner_token).await[0]["name"],
        "Ops hook v2"
    );

    // Delete asks first, and only the confirmation deletes.
    let r = owner
        .post(&format!("/channels/{id}/delete"), &[("csrf", &csrf)])
        .await;
    r.assert_status(200);
    assert!(r.text.contains(r#"id="confirm-delete""#), "{}", r.text);
    assert!(unescape(&r.text).contains("Delete the channel “Ops hook v2”?"));
    assert_eq!(app.count("channels").await, 1);
    let r = owner
        .post(
            &format!("/channels/{id}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(app.count("channels").await, 0);
}

#[sqlx::test]
async fn invalid_fields_are_shown_next_to_each_field_and_nothing_is_saved(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;
    let cases = [
        (
            "webhook",
            vec![("name", ""), ("url", "https://10.0.0.1/x")],
            "c-url",
            "public",
        ),
        (
            "webhook",
            vec![("name", "Plain"), ("url", "http://93.184.216.34/x")],
            "c-url",
            "https",
        ),
        (
            "email",
            vec![
                ("name", "Mail"),
                ("recipients", "ok@acme.test, not-an-address"),
            ],
            "c-recipients",
            "not-an-address",
        ),
        (
            "slack",
            vec![("name", "Chat"), ("webhook_url", "")],
            "c-webhook-url",
            "required",
        ),
        (
            "pagerduty",
            vec![("name", "PD"), ("routing_key", "bad key!")],
            "c-routing-key",
            "routing key",
        ),
    ];
    for (kind, fields, input, expected) in cases {
        let mut all = vec![("csrf", csrf.as_str()), ("kind", kind)];
        all.extend(fields.iter().copied());
        let r = owner.post("/channels", &all).await;
        assert_eq!(r.status, 422, "{kind}: {}", r.text);
        let message = message_after(&r.text, input)
            .unwrap_or_else(|| panic!("{kind}: no message after {input}: {}", r.text));
        assert!(message.contains(expected), "{kind}: {message}");
        assert!(r.text.contains("Nothing was saved"));
    }
    // The empty name of the first case has its own message.
    let r = owner
        .post(
            "/channels",
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", ""),
                ("url", "https://93.184.216.34/x"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(message_after(&r.text, "c-name").is_some(), "{}", r.text);
    assert_eq!(app.count("channels").await, 0);
}

#[sqlx::test]
async fn the_test_button_shows_the_outcome_on_the_page(pool: PgPool) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(pool, |s| s.smtp.url = Some(url.into())).await;
    let t = app.create_tenant("acme").await;
    let r = app
        .post(
            "/api/v1/channels",
            &t.owner_token,
            json!({"name": "On call", "kind": "email", "config": {"recipients": ["oncall@acme.test"]}}),
        )
        .await;
    r.assert_status(201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let page = owner.get("/channels").await;
    assert!(
        page.text.contains("oncall@acme.test"),
        "the e-mail channel's target"
    );
    let csrf = csrf_of(&page.text);
    let r = owner
        .post(&format!("/channels/{id}/test"), &[("csrf", &csrf)])
        .await;
    r.assert_status(200);
    let text = unescape(&r.text);
    assert!(
        text.contains(r#"id="test-outcome">Test of “On call”: delivered"#),
        "{text}"
    );
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(smtp.messages()[0].subject, "streamwatch test alert");
}

#[sqlx::test]
async fn a_refused_delete_says_which_licenses_need_the_channel(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let channel = app
        .post(
            "/api/v1/channels",
            &t.owner_token,
            json!({"name": "Only", "kind": "webhook", "config": {"url": "https://93.184.216.34/h"}}),
        )
        .await;
    let id = channel.body["id"].as_str().unwrap().to_owned();
    let license = app.create_license(&t.owner_token, "DEPOT-7").await;
    sqlx::query(
        "INSERT INTO notification_settings (tenant_id, license_id, enabled, channels)
         SELECT tenant_id, id, true, ARRAY[$2::uuid] FROM licenses WHERE id = $1",
    )
    .bind(Uuid::parse_str(license["id"].as_str().unwrap()).unwrap())
    .bind(Uuid::parse_str(&id).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;
    let r = owner
        .post(
            &format!("/channels/{id}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains(r#"id="delete-refused""#) && r.text.contains("DEPOT-7"));
    assert_eq!(app.count("channels").await, 1);
}

#[sqlx::test]
async fn a_viewer_sees_the_channels_without_controls_and_cannot_change_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let channel = app
        .post(
            "/api/v1/channels",
            &t.owner_token,
            json!({"name": "Ops", "kind": "webhook", "config": {"url": "https://93.184.216.34/h"}}),
        )
        .await;
    let id = channel.body["id"].as_str().unwrap().to_owned();
    app.create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;
    let mut viewer = Ui::login(&app, "viewer@acme.test").await;
    let page = viewer.get("/channels").await;
    page.assert_status(200);
    assert!(page.text.contains("Ops"));
    for control in [
        "test-channel",
        "edit-channel",
        "delete-channel",
        "new-channel-button",
    ] {
        assert!(!page.text.contains(control), "a viewer sees {control}");
    }
    let csrf = csrf_of(&page.text);
    assert_eq!(viewer.get("/channels/new?kind=webhook").await.status, 403);
    assert_eq!(
        viewer.get(&format!("/channels/{id}/edit")).await.status,
        403
    );
    for (path, extra) in [
        (
            "/channels".to_owned(),
            vec![
                ("kind", "webhook"),
                ("name", "v"),
                ("url", "https://93.184.216.34/v"),
            ],
        ),
        (
            format!("/channels/{id}/edit"),
            vec![("kind", "webhook"), ("name", "v")],
        ),
        (format!("/channels/{id}/delete"), vec![("confirm", "yes")]),
        (format!("/channels/{id}/test"), vec![]),
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(extra);
        let r = viewer.post(&path, &fields).await;
        assert_eq!(r.status, 403, "viewer POST {path}: {}", r.text);
    }
    assert_eq!(channels(&app, &t.owner_token).await[0]["name"], "Ops");
}

#[sqlx::test]
async fn another_tenants_channel_is_not_found_and_a_wrong_csrf_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let channel = app
        .post(
            "/api/v1/channels",
            &acme.owner_token,
            json!({"name": "Ops", "kind": "webhook", "config": {"url": "https://93.184.216.34/h"}}),
        )
        .await;
    let id = channel.body["id"].as_str().unwrap().to_owned();
    let mut other = Ui::login(&app, &globex.owner_email).await;
    let page = other.get("/channels").await;
    assert!(!page.text.contains(&id));
    let csrf = csrf_of(&page.text);
    assert_eq!(other.get(&format!("/channels/{id}/edit")).await.status, 404);
    assert_eq!(other.get("/channels/not-a-uuid/edit").await.status, 404);
    for path in [
        format!("/channels/{id}/edit"),
        format!("/channels/{id}/delete"),
        format!("/channels/{id}/test"),
    ] {
        let r = other
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("kind", "webhook"),
                    ("name", "x"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "POST {path}: {}", r.text);
    }
    let mut owner = Ui::login(&app, &acme.owner_email).await;
    let r = owner
        .post(
            &format!("/channels/{id}/delete"),
            &[("csrf", "wrong"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.count("channels").await, 1);
}
