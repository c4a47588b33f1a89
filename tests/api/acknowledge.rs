//! Acknowledging an open alert (SPEC section 5a): the API (roles, 409, idempotent, shown in the
//! status), the signed one-click link (GET only shows, POST acknowledges, tampering refused),
//! and the Activity Status page's button. Episodes are opened by the real sweep on the
//! simulated clock, or inserted with SQL where only the acknowledgement matters.

use crate::{
    helpers::*,
    routing_settings::insert_episode,
    ui::{Ui, csrf_of},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use streamwatch::notify::ack::{AckKeys, AckToken, ack_url};
use uuid::Uuid;

fn acknowledge_path(license: &str) -> String {
    format!("/api/v1/licenses/{license}/acknowledge")
}

async fn acknowledge(app: &TestApp, token: &str, license: &str) -> TestResponse {
    app.request(Method::POST, &acknowledge_path(license), Some(token), None)
        .await
}

/// (acknowledged_at, acknowledged_by) of the episode, as stored.
async fn stored_ack(app: &TestApp, episode: Uuid) -> (Option<DateTime<Utc>>, Option<String>) {
    sqlx::query_as(
        "SELECT acknowledged_at, acknowledged_by FROM notification_episodes WHERE id = $1",
    )
    .bind(episode)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// `POST /admin/sweep`: one sweep and one send pass.
async fn sweep(app: &TestApp) -> Value {
    let r = app
        .request(Method::POST, "/api/v1/admin/sweep", Some(ADMIN_TOKEN), None)
        .await;
    r.assert_status(200);
    r.body
}

/// Moves the simulated clock forward, the service running meanwhile; returns the new now.
async fn advance(app: &TestApp, minutes: i64) -> DateTime<Utc> {
    let r = app
        .post(
            "/api/v1/admin/clock",
            ADMIN_TOKEN,
            json!({"advance_seconds": minutes * 60}),
        )
        .await;
    r.assert_status(200);
    r.body["now"].as_str().unwrap().parse().unwrap()
}

#[sqlx::test]
async fn an_alert_opened_by_the_sweep_is_acknowledged_once_at_the_simulated_now_and_shown_in_the_status(
    pool: PgPool,
) {
    let app = TestApp::spawn_with(pool, |s| s.clock.simulated = true).await;
    let tenant = app.create_tenant("acme").await;
    let site = app.create_site(&tenant.owner_token, "LIC-A").await;
    app.put_notification_settings(
        &tenant.owner_token,
        &site.id,
        json!({"enabled": true, "recipients": ["ops@acme.test"]}),
    )
    .await
    .assert_status(200);
    sweep(&app).await;
    app.push_ok(&site.agent_token, &Batch::one_active_camera())
        .await;
    // Nothing open: nothing to acknowledge.
    assert_eq!(
        app.license_status(&tenant.owner_token, &site.id).await["alert"],
        Value::Null
    );
    let r = acknowledge(&app, &tenant.owner_token, &site.id).await;
    r.assert_problem(409);
    assert_eq!(
        r.body["detail"],
        "nothing to acknowledge: the license has no open alert"
    );

    advance(&app, 30).await;
    sweep(&app).await;
    advance(&app, 31).await;
    assert_eq!(sweep(&app).await["opened"], 1);
    let alert = app.license_status(&tenant.owner_token, &site.id).await["alert"].clone();
    assert_eq!(alert["kind"], "inactive");
    assert_eq!(alert["acknowledged_at"], Value::Null);
    assert_eq!(alert["acknowledged_by"], Value::Null);

    // A day later (simulated), the owner acknowledges: the time is the simulated now.
    let now = advance(&app, 24 * 60).await;
    let r = acknowledge(&app, &tenant.owner_token, &site.id).await;
    r.assert_status(200);
    assert_eq!(r.body["id"], alert["id"]);
    assert_eq!(r.body["kind"], "inactive");
    assert_eq!(r.body["opened_at"], alert["opened_at"]);
    assert_eq!(r.body["acknowledged_by"], "owner@acme.test");
    let at: DateTime<Utc> = r.body["acknowledged_at"].as_str().unwrap().parse().unwrap();
    assert!(
        at >= now && (at - now).num_seconds() < 300,
        "{at} is not the simulated now {now}"
    );
    let first = r.body.clone();

    // Again, by someone else: 200 and the first acknowledgement stays.
    advance(&app, 10).await;
    let (_, admin) = app
        .create_user(&tenant.owner_token, "admin@acme.test", "admin")
        .await;
    let r = acknowledge(&app, &admin, &site.id).await;
    r.assert_status(200);
    assert_eq!(r.body, first);
    let status = app.license_status(&tenant.owner_token, &site.id).await;
    assert_eq!(status["alert"], first);
}

#[sqlx::test]
async fn only_admins_and_owners_of_the_tenant_may_acknowledge_and_an_api_key_is_named(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-K").await;
    let id = license["id"].as_str().unwrap();
    let episode = insert_episode(&app, &tenant.id, id).await;
    let (_, viewer) = app
        .create_user(&tenant.owner_token, "viewer@acme.test", "viewer")
        .await;
    acknowledge(&app, &viewer, id).await.assert_problem(403);
    let (_, viewer_key) = app.create_api_key(&tenant.owner_token, "viewer").await;
    acknowledge(&app, &viewer_key, id).await.assert_problem(403);
    let globex = app.create_tenant("globex").await;
    acknowledge(&app, &globex.owner_token, id)
        .await
        .assert_problem(404);
    app.request(Method::POST, &acknowledge_path(id), None, None)
        .await
        .assert_problem(401);
    acknowledge(&app, &tenant.owner_token, &Uuid::now_v7().to_string())
        .await
        .assert_problem(404);
    assert_eq!(stored_ack(&app, episode).await, (None, None));
    // The viewer still sees the alert in the status.
    assert_eq!(
        app.license_status(&viewer, id).await["alert"]["id"],
        json!(episode)
    );

    let (_, admin_key) = app.create_api_key(&tenant.owner_token, "admin").await;
    let r = acknowledge(&app, &admin_key, id).await;
    r.assert_status(200);
    assert_eq!(r.body["acknowledged_by"], "API key admin key");
    assert_eq!(
        stored_ack(&app, episode).await.1.as_deref(),
        Some("API key admin key")
    );
}

#[sqlx::test]
async fn a_closed_episode_is_nothing_to_acknowledge(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-C").await;
    let id = license["id"].as_str().unwrap();
    let episode = insert_episode(&app, &tenant.id, id).await;
    sqlx::query("UPDATE notification_episodes SET closed_at = now() WHERE id = $1")
        .bind(episode)
        .execute(&app.pool)
        .await
        .unwrap();
    acknowledge(&app, &tenant.owner_token, id)
        .await
        .assert_problem(409);
    assert_eq!(stored_ack(&app, episode).await, (None, None));
    assert_eq!(
        app.license_status(&tenant.owner_token, id).await["alert"],
        Value::Null
    );
}

// --- the signed link -------------------------------------------------------------------------

struct Link {
    app: TestApp,
    tenant: TestTenant,
    license: String,
    episode: Uuid,
    token: String,
}

async fn link(pool: PgPool) -> Link {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-L").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let episode = insert_episode(&app, &tenant.id, &license).await;
    // Signed as the server signs it: the same secret.
    let token = AckKeys::new(JWT_SECRET.as_bytes()).sign(&AckToken {
        tenant_id: tenant.id.parse().unwrap(),
        license_id: license.parse().unwrap(),
        episode_id: episode,
        via: "ops@acme.test".to_owned(),
    });
    Link {
        app,
        tenant,
        license,
        episode,
        token,
    }
}

impl Link {
    async fn open(&self, token: &str) -> TestResponse {
        self.app
            .send(self.app.client.get(ack_url(&self.app.address, token)))
            .await
    }

    /// The page's button: a form post with the token in a hidden field.
    async fn press(&self, token: &str) -> TestResponse {
        self.app
            .send(
                self.app
                    .client
                    .post(format!("{}/acknowledge", self.app.address))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("token={token}")),
            )
            .await
    }
}

#[sqlx::test]
async fn opening_the_link_only_shows_the_alert_and_its_button_acknowledges(pool: PgPool) {
    let l = link(pool).await;
    // GET (what unfurlers and scanners do) changes nothing, however often.
    for _ in 0..2 {
        let page = l.open(&l.token).await;
        page.assert_status(200);
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert!(page.text.contains("Site LIC-L (LIC-L)"), "{}", page.text);
        assert!(page.text.contains("Not acknowledged yet"), "{}", page.text);
        assert!(
            page.text
                .contains("<form method=\"post\" action=\"/acknowledge\">"),
            "{}",
            page.text
        );
        assert_eq!(
            page.text.matches("<button").count(),
            1,
            "one button: {}",
            page.text
        );
        assert!(
            page.text
                .contains(&format!("name=\"token\" value=\"{}\"", l.token)),
            "{}",
            page.text
        );
        assert_eq!(stored_ack(&l.app, l.episode).await, (None, None));
    }

    // The button acknowledges, by the link's recipient.
    let r = l.press(&l.token).await;
    r.assert_status(200);
    assert!(
        r.text.contains("Acknowledged by link via ops@acme.test"),
        "{}",
        r.text
    );
    let (at, by) = stored_ack(&l.app, l.episode).await;
    assert!(at.is_some());
    assert_eq!(by.as_deref(), Some("link via ops@acme.test"));
    // Again: still 200, the first acknowledgement stays; the page now says who, without a button.
    l.press(&l.token).await.assert_status(200);
    assert_eq!(stored_ack(&l.app, l.episode).await, (at, by));
    let page = l.open(&l.token).await;
    page.assert_status(200);
    assert!(!page.text.contains("<button"), "{}", page.text);
    assert!(page.text.contains("Acknowledged by link via ops@acme.test"));
    let status = l
        .app
        .license_status(&l.tenant.owner_token, &l.license)
        .await;
    assert_eq!(status["alert"]["acknowledged_by"], "link via ops@acme.test");
}

#[sqlx::test]
async fn a_tampered_link_is_refused_on_both_methods_and_changes_nothing(pool: PgPool) {
    let l = link(pool).await;
    let (payload, signature) = l.token.split_once('.').unwrap();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let other_episode = Uuid::now_v7();
    let forged_payload =
        URL_SAFE_NO_PAD.encode(decoded.replace(&l.episode.to_string(), &other_episode.to_string()));
    let mut forged_signature = signature.to_owned();
    let first = forged_signature.remove(0);
    forged_signature.insert(0, if first == 'A' { 'B' } else { 'A' });
    // An unsubscribe token of the same server is no acknowledgement token.
    let unsubscribe = streamwatch::notify::email::UnsubscribeKeys::new(JWT_SECRET.as_bytes()).sign(
        &streamwatch::notify::email::Unsubscribe {
            tenant_id: l.tenant.id.parse().unwrap(),
            recipient: "ops@acme.test".to_owned(),
            licenses: vec![l.license.parse().unwrap()],
        },
    );
    for token in [
        format!("{forged_payload}.{signature}"),
        format!("{payload}.{forged_signature}"),
        payload.to_owned(),
        "nonsense".to_owned(),
        String::new(),
        unsubscribe,
    ] {
        let page = l.open(&token).await;
        page.assert_status(400);
        assert!(page.text.contains("not valid"), "{}", page.text);
        l.press(&token).await.assert_status(400);
    }
    // No token at all.
    l.app
        .send(l.app.client.get(format!("{}/acknowledge", l.app.address)))
        .await
        .assert_status(400);
    l.app
        .send(l.app.client.post(format!("{}/acknowledge", l.app.address)))
        .await
        .assert_status(400);
    assert_eq!(stored_ack(&l.app, l.episode).await, (None, None));
}

#[sqlx::test]
async fn a_link_to_a_closed_episode_or_a_deleted_license_gets_a_clear_page(pool: PgPool) {
    let l = link(pool).await;
    // The license recovered, and a new episode opened since: the old link touches neither.
    sqlx::query("UPDATE notification_episodes SET closed_at = now() WHERE id = $1")
        .bind(l.episode)
        .execute(&l.app.pool)
        .await
        .unwrap();
    let newer = insert_episode(&l.app, &l.tenant.id, &l.license).await;
    for r in [l.open(&l.token).await, l.press(&l.token).await] {
        r.assert_status(409);
        assert!(r.text.contains("recovered already"), "{}", r.text);
        assert!(!r.text.contains("<button"), "{}", r.text);
    }
    assert_eq!(stored_ack(&l.app, l.episode).await, (None, None));
    assert_eq!(stored_ack(&l.app, newer).await, (None, None));

    l.app
        .delete(
            &format!("/api/v1/licenses/{}", l.license),
            &l.tenant.owner_token,
        )
        .await
        .assert_status(204);
    for r in [l.open(&l.token).await, l.press(&l.token).await] {
        r.assert_status(404);
        assert!(r.text.contains("no longer exists"), "{}", r.text);
    }
}

// --- the Activity Status page --------------------------------------------------------------------

#[sqlx::test]
async fn the_activity_page_shows_the_open_alert_and_editors_acknowledge_it_with_a_button(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-U").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/licenses/{license}");
    let button = format!("action=\"/licenses/{license}/acknowledge\"");
    let mut owner = Ui::login(&app, &tenant.owner_email).await;
    app.create_user(&tenant.owner_token, "viewer@acme.test", "viewer")
        .await;
    let mut viewer = Ui::login(&app, "viewer@acme.test").await;

    // No alert: no box, no button.
    let page = owner.get(&path).await;
    assert!(!page.text.contains("id=\"alert\""));
    assert!(!page.text.contains(&button));
    let csrf = csrf_of(&page.text);
    let r = owner
        .post(&format!("{path}/acknowledge"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("Nothing to acknowledge"));

    let episode = insert_episode(&app, &tenant.id, &license).await;
    let page = owner.get(&path).await;
    assert!(
        page.text.contains("Open alert:</b> Inactive since"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Not acknowledged yet."));
    assert!(page.text.contains(&button), "{}", page.text);
    let page = viewer.get(&path).await;
    assert!(page.text.contains("Not acknowledged yet."));
    assert!(!page.text.contains(&button), "a viewer gets no button");

    // Forged posts change nothing: a wrong token, a viewer's own valid token.
    let r = owner
        .post(&format!("{path}/acknowledge"), &[("csrf", &"0".repeat(64))])
        .await;
    assert_eq!(r.status, 403);
    let viewer_csrf = viewer.csrf().await;
    let r = viewer
        .post(&format!("{path}/acknowledge"), &[("csrf", &viewer_csrf)])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(stored_ack(&app, episode).await, (None, None));

    let r = owner
        .post(&format!("{path}/acknowledge"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some(path.as_str()));
    assert_eq!(
        stored_ack(&app, episode).await.1.as_deref(),
        Some("owner@acme.test")
    );
    let page = owner.get(&path).await;
    assert!(
        page.text
            .contains("id=\"acknowledged\">Acknowledged by owner@acme.test at "),
        "{}",
        page.text
    );
    assert!(!page.text.contains(&button));
}
