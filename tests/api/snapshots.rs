//! Picture health on the server (SPEC section 7, issue 19): snapshot upload and read-back,
//! their bounds and tenant isolation, the `degraded` rule for bad pictures, retention of
//! retired cameras' snapshots, and the Activity Status page's thumbnails.

use crate::helpers::*;
use crate::ui::{Ui, value_after};
use chrono::{Duration, SecondsFormat, Utc};
use reqwest::header;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A 320x180 JPEG made by ffmpeg (`testsrc2`), and a black one.
const PICTURE: &[u8] = include_bytes!("../fixtures/snapshot.jpg");
const BLACK: &[u8] = include_bytes!("../fixtures/black.jpg");

fn picture(state: &str, since_minutes_ago: i64) -> Value {
    let now = Utc::now();
    let since =
        (now - Duration::minutes(since_minutes_ago)).to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({"state": state, "since": since, "checked_at": now.to_rfc3339_opts(SecondsFormat::Secs, true),
           "luma_mean": 97.0, "change_pct": 0.0})
}

/// A heartbeat (`seq`, instance `instance`) listing these cameras.
async fn heartbeat(
    app: &TestApp,
    site: &TestSite,
    instance: Uuid,
    seq: u64,
    cameras: &[(&str, Camera)],
) {
    let batch = Batch::new(instance)
        .seq(seq)
        .cameras(cameras.iter().cloned());
    app.push_ok(&site.agent_token, &batch).await;
}

async fn upload(
    app: &TestApp,
    token: &str,
    camera: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> TestResponse {
    let mut req = app
        .client
        .put(format!("{}/api/v1/ingest/snapshots/{camera}", app.address))
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    app.send(req).await
}

async fn upload_jpeg(
    app: &TestApp,
    site: &TestSite,
    camera: &str,
    jpeg: &[u8],
    state: Option<&str>,
) {
    let headers: Vec<(&str, &str)> = state
        .map(|s| vec![("Streamwatch-Picture-State", s)])
        .unwrap_or_default();
    upload(
        app,
        &site.agent_token,
        camera,
        "image/jpeg",
        jpeg.to_vec(),
        &headers,
    )
    .await
    .assert_status(204);
}

/// GETs a snapshot and returns the raw response (bytes included).
async fn read(
    app: &TestApp,
    token: &str,
    license: &str,
    camera: &str,
    query: &str,
) -> reqwest::Response {
    app.client
        .get(format!(
            "{}/api/v1/licenses/{license}/cameras/{camera}/snapshot{query}",
            app.address
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Decodes `jpeg` with ffmpeg, a decoder independent of ours.
fn decodes_with_ffmpeg(jpeg: &[u8]) {
    let path = std::env::temp_dir().join(format!("streamwatch-snapshot-{}.jpg", Uuid::new_v4()));
    std::fs::write(&path, jpeg).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg (Debian's ffmpeg package) decodes the snapshot");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg could not decode the snapshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[sqlx::test]
async fn an_uploaded_snapshot_reads_back_byte_for_byte_with_an_etag_and_a_304(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    heartbeat(
        &app,
        &site,
        Uuid::new_v4(),
        1,
        &[("camera-1", Camera::active())],
    )
    .await;
    let put = upload(
        &app,
        &site.agent_token,
        "camera-1",
        "image/jpeg",
        PICTURE.to_vec(),
        &[],
    )
    .await;
    put.assert_status(204);
    let put_etag = put.header("etag").unwrap().to_owned();

    // Through the contract checker once, then raw for the bytes.
    let path = format!("/api/v1/licenses/{}/cameras/camera-1/snapshot", site.id);
    app.get(&path, &tenant.owner_token).await.assert_status(200);
    let r = read(&app, &tenant.owner_token, &site.id, "camera-1", "").await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, put_etag);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "private, max-age=30");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(
        &bytes[..],
        PICTURE,
        "the bytes read back are the bytes uploaded"
    );
    decodes_with_ffmpeg(&bytes);

    let req = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(&tenant.owner_token)
        .header(header::IF_NONE_MATCH, &etag);
    let not_modified = app.send(req).await;
    not_modified.assert_status(304);
    assert!(not_modified.text.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));

    // A new picture is a new ETag: the old one no longer answers 304.
    upload_jpeg(&app, &site, "camera-1", BLACK, None).await;
    let req = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(&tenant.owner_token)
        .header(header::IF_NONE_MATCH, &etag);
    let changed = app.send(req).await;
    changed.assert_status(200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

/// (what is wrong, camera id, Content-Type, body, extra headers, expected status).
type BadUpload = (
    &'static str,
    &'static str,
    &'static str,
    Vec<u8>,
    Vec<(&'static str, &'static str)>,
    u16,
);

#[sqlx::test]
async fn uploads_of_the_wrong_size_type_shape_camera_or_credential_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    heartbeat(
        &app,
        &site,
        Uuid::new_v4(),
        1,
        &[("camera-1", Camera::active())],
    )
    .await;
    let mut too_large = PICTURE.to_vec();
    too_large.splice(2..2, std::iter::repeat_n(0u8, 256 * 1024));
    let cases: Vec<BadUpload> = vec![
        (
            "over 256 KiB",
            "camera-1",
            "image/jpeg",
            too_large,
            vec![],
            413,
        ),
        (
            "a PNG type",
            "camera-1",
            "image/png",
            PICTURE.to_vec(),
            vec![],
            415,
        ),
        ("no type", "camera-1", "", PICTURE.to_vec(), vec![], 415),
        (
            "not a JPEG",
            "camera-1",
            "image/jpeg",
            b"<html>error</html>".to_vec(),
            vec![],
            400,
        ),
        (
            "a truncated JPEG",
            "camera-1",
            "image/jpeg",
            PICTURE[..PICTURE.len() / 2].to_vec(),
            vec![],
            400,
        ),
        (
            "an invalid camera id",
            "bad%20id",
            "image/jpeg",
            PICTURE.to_vec(),
            vec![],
            422,
        ),
        (
            "an unknown picture state",
            "camera-1",
            "image/jpeg",
            PICTURE.to_vec(),
            vec![("Streamwatch-Picture-State", "tampered")],
            422,
        ),
        (
            "a taken time that is not RFC 3339",
            "camera-1",
            "image/jpeg",
            PICTURE.to_vec(),
            vec![("Streamwatch-Taken-At", "yesterday")],
            422,
        ),
        (
            "a camera no heartbeat listed",
            "camera-9",
            "image/jpeg",
            PICTURE.to_vec(),
            vec![],
            404,
        ),
    ];
    for (name, camera, content_type, body, headers, status) in cases {
        let r = upload(
            &app,
            &site.agent_token,
            camera,
            content_type,
            body,
            &headers,
        )
        .await;
        assert_eq!(r.status.as_u16(), status, "{name}: {}", r.text);
        r.assert_problem(status);
    }
    // A user's token is not an agent token.
    upload(
        &app,
        &tenant.owner_token,
        "camera-1",
        "image/jpeg",
        PICTURE.to_vec(),
        &[],
    )
    .await
    .assert_problem(401);
    assert_eq!(app.count("camera_snapshots").await, 0, "nothing was stored");
}

#[sqlx::test]
async fn another_tenants_snapshot_url_answers_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (acme, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let (globex, other) = app.create_tenant_with_site("globex", "LIC-1").await;
    heartbeat(
        &app,
        &site,
        Uuid::new_v4(),
        1,
        &[("camera-1", Camera::active())],
    )
    .await;
    upload_jpeg(&app, &site, "camera-1", PICTURE, None).await;
    let path = format!("/api/v1/licenses/{}/cameras/camera-1/snapshot", site.id);
    app.get(&path, &globex.owner_token)
        .await
        .assert_problem(404);
    // Globex's agent names the same camera id: its own license has no such camera.
    upload(
        &app,
        &other.agent_token,
        "camera-1",
        "image/jpeg",
        BLACK.to_vec(),
        &[],
    )
    .await
    .assert_problem(404);
    // Acme still reads its own picture, unchanged; unknown cameras and kinds are refused.
    let r = read(&app, &acme.owner_token, &site.id, "camera-1", "").await;
    assert_eq!(&r.bytes().await.unwrap()[..], PICTURE);
    let other_camera = format!("/api/v1/licenses/{}/cameras/camera-2/snapshot", site.id);
    app.get(&other_camera, &acme.owner_token)
        .await
        .assert_problem(404);
    app.get(&format!("{path}?kind=bad"), &acme.owner_token)
        .await
        .assert_problem(404);
    let r = app
        .get(&format!("{path}?kind=worst"), &acme.owner_token)
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/query/kind"]);
}

#[sqlx::test]
async fn the_tenants_size_bound_refuses_growth_with_507_but_lets_cameras_replace(pool: PgPool) {
    let bound = PICTURE.len() as u64 * 3 / 2;
    let app = TestApp::spawn_with(pool, |s| s.snapshots.max_bytes_per_tenant = bound).await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    heartbeat(
        &app,
        &site,
        Uuid::new_v4(),
        1,
        &[
            ("camera-1", Camera::active()),
            ("camera-2", Camera::active()),
        ],
    )
    .await;
    upload_jpeg(&app, &site, "camera-1", PICTURE, None).await;
    let r = upload(
        &app,
        &site.agent_token,
        "camera-2",
        "image/jpeg",
        PICTURE.to_vec(),
        &[],
    )
    .await;
    r.assert_problem(507);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("max_bytes_per_tenant"),
        "{}",
        r.text
    );
    // Replacing camera-1's snapshot does not grow the total.
    upload_jpeg(&app, &site, "camera-1", PICTURE, None).await;
    assert_eq!(app.count("camera_snapshots").await, 1);
}

#[sqlx::test]
async fn a_frozen_picture_degrades_the_camera_with_a_reason_until_it_is_ok(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let instance = Uuid::new_v4();
    let frozen = Camera::active().with(json!({"picture": picture("frozen", 7)}));
    heartbeat(
        &app,
        &site,
        instance,
        1,
        &[("camera-1", Camera::active()), ("camera-2", frozen)],
    )
    .await;

    let status = app.license_status(&tenant.owner_token, &site.id).await;
    assert_eq!(status["status"], "partially_active", "{status}");
    let reasons: Vec<&str> = status["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("camera-2 picture frozen since ") && reasons[0].ends_with(" UTC"),
        "{reasons:?}"
    );
    let camera = &status["cameras"][1];
    assert_eq!(camera["camera_id"], "camera-2");
    assert_eq!(camera["state"], "degraded");
    assert_eq!(camera["active"], true);
    assert_eq!(camera["picture"]["state"], "frozen");
    assert_eq!(status["cameras"][0]["picture"], Value::Null);
    // The license list reads the writer's stored camera states: the same story.
    let list = app.get("/api/v1/licenses", &tenant.owner_token).await;
    assert_eq!(
        list.body["items"][0]["status"], "partially_active",
        "{}",
        list.text
    );

    let fine = Camera::active().with(json!({"picture": picture("ok", 0)}));
    heartbeat(
        &app,
        &site,
        instance,
        2,
        &[("camera-1", Camera::active()), ("camera-2", fine)],
    )
    .await;
    let status = app.license_status(&tenant.owner_token, &site.id).await;
    assert_eq!(status["status"], "all_active", "{status}");
    assert_eq!(status["reasons"], json!([]));
    let list = app.get("/api/v1/licenses", &tenant.owner_token).await;
    assert_eq!(
        list.body["items"][0]["status"], "all_active",
        "{}",
        list.text
    );
}

#[sqlx::test]
async fn the_first_picture_of_a_bad_episode_is_kept_as_the_bad_snapshot(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    heartbeat(
        &app,
        &site,
        Uuid::new_v4(),
        1,
        &[("camera-1", Camera::active())],
    )
    .await;
    upload_jpeg(&app, &site, "camera-1", PICTURE, Some("ok")).await;
    upload_jpeg(&app, &site, "camera-1", BLACK, Some("black")).await;
    upload_jpeg(&app, &site, "camera-1", PICTURE, Some("black")).await;
    let bad = read(&app, &tenant.owner_token, &site.id, "camera-1", "?kind=bad").await;
    assert_eq!(bad.headers()["streamwatch-picture-state"], "black");
    assert_eq!(
        &bad.bytes().await.unwrap()[..],
        BLACK,
        "the episode's first picture"
    );
    let latest = read(
        &app,
        &tenant.owner_token,
        &site.id,
        "camera-1",
        "?kind=latest",
    )
    .await;
    assert_eq!(&latest.bytes().await.unwrap()[..], PICTURE);
}

#[sqlx::test]
async fn retiring_a_camera_removes_its_snapshots(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let instance = Uuid::new_v4();
    let both = [
        ("camera-1", Camera::active()),
        ("camera-2", Camera::active()),
    ];
    heartbeat(&app, &site, instance, 1, &both).await;
    upload_jpeg(&app, &site, "camera-1", PICTURE, None).await;
    upload_jpeg(&app, &site, "camera-2", BLACK, Some("black")).await;
    assert_eq!(app.count("camera_snapshots").await, 3);
    // camera-2 left the agent's configuration: the writer retires it, its snapshots go too.
    heartbeat(&app, &site, instance, 2, &[("camera-1", Camera::active())]).await;
    assert_eq!(app.count("camera_snapshots").await, 1);
    let path = format!("/api/v1/licenses/{}/cameras/camera-2/snapshot", site.id);
    app.get(&path, &tenant.owner_token)
        .await
        .assert_problem(404);
    // Deleting the license removes the rest.
    app.delete(
        &format!("/api/v1/licenses/{}", site.id),
        &tenant.owner_token,
    )
    .await
    .assert_status(204);
    assert_eq!(app.count("camera_snapshots").await, 0);
}

#[sqlx::test]
async fn the_activity_status_page_shows_thumbnails_and_the_picture_state(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let frozen = Camera::active().with(json!({"picture": picture("frozen", 7)}));
    heartbeat(
        &app,
        &site,
        Uuid::new_v4(),
        1,
        &[("camera-1", frozen), ("camera-2", Camera::active())],
    )
    .await;
    upload_jpeg(&app, &site, "camera-1", PICTURE, Some("frozen")).await;

    let mut ui = Ui::login(&app, &tenant.owner_email).await;
    let page = ui.get(&format!("/licenses/{}", site.id)).await;
    page.assert_status(200);
    let src = value_after(&page.text, r#"<img class="thumb" src=""#).expect("a thumbnail");
    let src = src.replace("&amp;", "&");
    assert!(
        src.starts_with(&format!(
            "/licenses/{}/cameras/camera-1/snapshot?v=",
            site.id
        )),
        "{src}"
    );
    assert!(page.text.contains("frozen since"), "the picture column");
    assert!(
        page.text.contains("when the bad picture began"),
        "the bad-state link"
    );
    // camera-2 has no snapshot yet.
    assert_eq!(page.text.matches(r#"<img class="thumb""#).count(), 1);

    let image = ui.get(&src).await;
    image.assert_status(200);
    assert_eq!(image.header("content-type"), Some("image/jpeg"));
    // Another tenant's session does not see it.
    let globex = app.create_tenant("globex").await;
    let mut other = Ui::login(&app, &globex.owner_email).await;
    other.get(&src).await.assert_status(404);
}
