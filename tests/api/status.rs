//! Status end to end (SPEC sections 3, 4 and 6): heartbeats go in through
//! `POST /api/v1/ingest/heartbeats`, status comes out of the status APIs, the license list and
//! the summary, and all of them must tell the same story.
//!
//! There is no simulated clock yet, so "old" heartbeats are made the way a spool replay looks:
//! the batch's `agent.sent_at` is now and the heartbeat's `observed_at` lies in the past. The
//! server counts such a heartbeat as activity at its (clock-corrected) observation time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::*;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use streamwatch::{
    db,
    domain::status::LicenseStatus,
    store::status::{self as store_status, ListQuery, Sort},
};
use uuid::Uuid;

// --- helpers of this module ------------------------------------------------------------------

/// One heartbeat observed now, from a new agent instance.
async fn push_fresh(app: &TestApp, site: &TestSite, cameras: &[(&str, Camera)]) {
    let batch = Batch::new(Uuid::new_v4())
        .seq(1)
        .cameras(cameras.iter().cloned());
    app.push_ok(&site.agent_token, &batch).await;
}

/// Heartbeat 1 of `instance` on `hostname`, observed at `observed` and sent at `sent` (by the
/// agent's clock).
async fn push_from(
    app: &TestApp,
    site: &TestSite,
    instance: Uuid,
    hostname: &str,
    sent: DateTime<Utc>,
    observed: DateTime<Utc>,
    cameras: &[(&str, Camera)],
) {
    let batch = Batch::new(instance)
        .hostname(hostname)
        .sent_at(sent)
        .seq(1)
        .observed_at(observed)
        .cameras(cameras.iter().cloned());
    app.push_ok(&site.agent_token, &batch).await;
}

/// One heartbeat observed `minutes` ago and sent now (a replay), from `instance`: it counts as
/// activity `minutes` ago.
async fn push_old_from(
    app: &TestApp,
    site: &TestSite,
    instance: Uuid,
    hostname: &str,
    minutes: i64,
    cameras: &[(&str, Camera)],
) {
    let now = Utc::now();
    let observed = now - Duration::minutes(minutes);
    push_from(app, site, instance, hostname, now, observed, cameras).await;
}

/// An active camera observed `minutes` ago, from a new agent instance.
async fn push_old(app: &TestApp, site: &TestSite, minutes: i64) {
    let observed = Utc::now() - Duration::minutes(minutes);
    push_old_from(
        app,
        site,
        Uuid::new_v4(),
        "site-box",
        minutes,
        &[("camera-1", Camera::active_at(observed))],
    )
    .await;
}

/// The camera `id` of an Activity Status.
fn camera_in<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["camera_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {}", status["cameras"]))
}

fn camera_ids(status: &Value) -> Vec<&str> {
    status["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap())
        .collect()
}

fn reasons(status: &Value) -> Vec<&str> {
    status["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| s.parse().unwrap())
}

/// Asserts status and symbol of an Activity Status.
#[track_caller]
fn assert_license_status(status: &Value, expected: &str, symbol: &str) {
    assert_eq!(status["status"], expected, "{status}");
    assert_eq!(status["symbol"], symbol, "{status}");
}

const STATUSES: [&str; 4] = [
    "all_active",
    "partially_active",
    "inactive",
    "not_installed",
];

/// The license list (with and without `?status=`), the single license read and the summary
/// agree with every license's Activity Status. Returns each license key's status.
async fn assert_list_and_summary_agree(app: &TestApp, token: &str) -> BTreeMap<String, String> {
    let r = app.get("/api/v1/licenses?limit=200", token).await;
    r.assert_status(200);
    let items = r.body["items"].as_array().unwrap();
    let mut ids_by_status: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut status_by_key = BTreeMap::new();
    for item in items {
        let id = item["id"].as_str().unwrap();
        let key = item["key"].as_str().unwrap();
        let s = app.license_status(token, id).await;
        let context = format!("{key}: list {item}\n/status {s}");
        assert_eq!(item["status"], s["status"], "{context}");
        assert_eq!(item["symbol"], s["symbol"], "{context}");
        let cameras = s["cameras"].as_array().unwrap();
        assert_eq!(item["cameras_total"], cameras.len(), "{context}");
        let active = cameras.iter().filter(|c| c["state"] == "active").count();
        assert_eq!(item["cameras_active"], active, "{context}");
        assert_eq!(
            time(&item["last_activity_at"]),
            time(&s["last_activity_at"]),
            "{context}"
        );
        let one = app.get(&format!("/api/v1/licenses/{id}"), token).await;
        one.assert_status(200);
        assert_eq!(one.body["status"], s["status"], "{context}");
        assert_eq!(one.body["cameras_active"], active, "{context}");
        let status = s["status"].as_str().unwrap().to_owned();
        ids_by_status
            .entry(status.clone())
            .or_default()
            .insert(id.to_owned());
        status_by_key.insert(key.to_owned(), status);
    }

    let summary = app.get("/api/v1/summary", token).await;
    summary.assert_status(200);
    assert_eq!(summary.body["total"], items.len(), "{}", summary.text);
    for status in STATUSES {
        let expected = ids_by_status.get(status).cloned().unwrap_or_default();
        let r = app
            .get(
                &format!("/api/v1/licenses?status={status}&limit=200"),
                token,
            )
            .await;
        r.assert_status(200);
        let listed: BTreeSet<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, expected, "?status={status}: {}", r.text);
        assert_eq!(
            summary.body[status],
            expected.len(),
            "summary {status}: {}",
            summary.text
        );
        // The Monitoring page's single query gives the same page and the same counts, also
        // when the page is empty.
        if let Some(any) = items.first() {
            let tenant: Uuid = sqlx::query_scalar("SELECT tenant_id FROM licenses WHERE id = $1")
                .bind(Uuid::parse_str(any["id"].as_str().unwrap()).unwrap())
                .fetch_one(&app.pool)
                .await
                .unwrap();
            let query = ListQuery {
                status: Some(LicenseStatus::parse(status).unwrap()),
                kind: None,
                text: None,
                tags: Vec::new(),
                quiet: None,
                quiet_now: Default::default(),
                sort: Sort::parse("status").unwrap(),
                after: None,
                limit: 200,
            };
            let mut tx = db::begin_tenant(&app.pool, tenant).await.unwrap();
            let (page, counts) =
                store_status::list_with_summary(&mut tx, tenant, Utc::now(), &query)
                    .await
                    .unwrap();
            let page: BTreeSet<String> = page.iter().map(|l| l.id.to_string()).collect();
            assert_eq!(page, expected, "list_with_summary ?status={status}");
            let counts: BTreeMap<&str, i64> =
                counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            for s in STATUSES {
                assert_eq!(
                    counts.get(s).copied().unwrap_or(0),
                    summary.body[s].as_i64().unwrap(),
                    "list_with_summary counts, {s}, page ?status={status}"
                );
            }
        }
    }
    status_by_key
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `last_checked` as the edge Heartbeat API writes it, in timezone `tz`.
fn last_checked(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S%.6f%:z")
        .to_string()
}

// --- SPEC section 4: the camera-state table --------------------------------------------------

#[sqlx::test]
async fn every_row_of_the_camera_state_table_shows_in_the_activity_status(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let s = app.create_site(&owner, "CAMS").await;
    let now = Utc::now();
    // Half a second more than 40 s keeps the reason at "40 s" whatever the measured clock
    // offset of this request (a few milliseconds) does to the corrected times.
    let frame_40s_ago = now - Duration::milliseconds(40_500);
    let failing = json!({"status": "failing", "cached": 12, "last_error": "HTTP 503"});
    let cameras = [
        ("camera-0", Camera::active_at(now)),
        (
            "camera-1",
            Camera::active_at(now).with(json!({"webhooks": failing})),
        ),
        (
            "camera-2",
            Camera::report("running", 60, false, Some(frame_40s_ago)),
        ),
        (
            "camera-3",
            Camera::report("stopped", 0, false, None)
                .with(json!({"last_error": "connection refused"})),
        ),
        ("camera-4", Camera::report("starting", -1, false, None)),
        ("camera-5", Camera::report("running", 42, true, Some(now))),
        ("camera-6", Camera::report("offline", 0, false, None)),
        ("camera-7", Camera::report("error", 0, false, None)),
        ("camera-8", Camera::report("running", 50, true, Some(now))),
    ];
    app.push_ok(
        &s.agent_token,
        &Batch::new(Uuid::new_v4()).seq(1).cameras(cameras),
    )
    .await;

    let status = app.license_status(&owner, &s.id).await;
    // (camera, state, active, health grade, video feed live)
    let expected = [
        ("camera-0", "active", true, "good", true),
        ("camera-1", "degraded", true, "good", true),
        ("camera-2", "starving", false, "fair", false),
        ("camera-3", "inactive", false, "bad", false),
        ("camera-4", "starting", false, "unknown", false),
        ("camera-5", "degraded", true, "bad", true),
        ("camera-6", "inactive", false, "bad", false),
        ("camera-7", "inactive", false, "bad", false),
        ("camera-8", "active", true, "fair", true),
    ];
    assert_eq!(
        camera_ids(&status),
        expected.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    for (id, state, active, grade, live) in expected {
        let c = camera_in(&status, id);
        assert_eq!(c["state"], state, "{id}: {c}");
        assert_eq!(c["active"], active, "{id}: {c}");
        assert_eq!(c["health_grade"], grade, "{id}: {c}");
        assert_eq!(c["video_feed"]["live"], live, "{id}: {c}");
    }
    let c1 = camera_in(&status, "camera-1");
    assert_eq!(c1["webhooks"]["status"], "failing");
    assert_eq!(c1["webhooks"]["cached"], 12);
    let c3 = camera_in(&status, "camera-3");
    assert_eq!(c3["reported_status"], "stopped");
    assert_eq!(c3["last_error"], "connection refused");

    assert_license_status(&status, "partially_active", "⚠️");
    assert_eq!(
        reasons(&status),
        [
            "webhooks failing on camera-1 (12 cached)",
            "camera-2 connected but no frames for 40 s",
            "camera-3 stopped: connection refused",
            "camera-4 starting",
            "camera-5 health 42 (bad)",
            "camera-6 offline",
            "camera-7 error",
        ]
    );
    assert_list_and_summary_agree(&app, &owner).await;
}

// --- SPEC section 4: the license-status table ------------------------------------------------

#[sqlx::test]
async fn every_row_of_the_license_status_table_has_its_symbol_and_reasons(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let now = Utc::now();

    let never = app.create_site(&owner, "NEVER").await;

    let silent = app.create_site(&owner, "SILENT").await;
    push_old(&app, &silent, 11).await;

    let broken = app.create_site(&owner, "BROKEN").await;
    push_fresh(
        &app,
        &broken,
        &[
            (
                "camera-3",
                Camera::report("stopped", 0, false, None)
                    .with(json!({"last_error": "connection refused"})),
            ),
            ("camera-4", Camera::report("starting", -1, false, None)),
        ],
    )
    .await;

    let empty = app.create_site(&owner, "EMPTY").await;
    push_fresh(&app, &empty, &[]).await;

    let partial = app.create_site(&owner, "PARTIAL").await;
    push_fresh(
        &app,
        &partial,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::report("offline", 0, false, None)),
        ],
    )
    .await;

    let all = app.create_site(&owner, "ALL").await;
    push_fresh(
        &app,
        &all,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::active_at(now)),
        ],
    )
    .await;

    let s = app.license_status(&owner, &never.id).await;
    assert_license_status(&s, "not_installed", "✘");
    assert!(
        reasons(&s).iter().any(|r| r.contains("never installed")),
        "{s}"
    );
    assert!(s["last_activity_at"].is_null(), "{s}");
    assert_eq!(s["cameras"], json!([]));
    assert_eq!(s["agents"], json!([]));

    let s = app.license_status(&owner, &silent.id).await;
    assert_license_status(&s, "inactive", "❌");
    assert_eq!(reasons(&s), ["no heartbeat for 11 min"]);
    assert!(reasons(&s)[0].starts_with("no heartbeat for"));
    assert_eq!(camera_in(&s, "camera-1")["state"], "inactive");
    assert_eq!(camera_in(&s, "camera-1")["video_feed"]["live"], false);

    let s = app.license_status(&owner, &broken.id).await;
    assert_license_status(&s, "inactive", "❌");
    assert_eq!(
        reasons(&s),
        ["camera-3 stopped: connection refused", "camera-4 starting"]
    );

    let s = app.license_status(&owner, &empty.id).await;
    assert_license_status(&s, "inactive", "❌");
    assert_eq!(reasons(&s), ["no cameras configured"]);
    assert!(s["last_activity_at"].is_string(), "{s}");

    let s = app.license_status(&owner, &partial.id).await;
    assert_license_status(&s, "partially_active", "⚠️");
    assert_eq!(reasons(&s), ["camera-2 offline"]);

    let s = app.license_status(&owner, &all.id).await;
    assert_license_status(&s, "all_active", "✅");
    assert!(reasons(&s).is_empty(), "{s}");
    assert_eq!(s["check_interval_seconds"], 600);

    let statuses = assert_list_and_summary_agree(&app, &owner).await;
    assert_eq!(statuses.len(), 6);
}

// --- freshness -------------------------------------------------------------------------------

#[sqlx::test]
async fn freshness_ends_at_the_check_interval_and_follows_a_changed_interval_at_read_time(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let nine = app.create_site(&owner, "NINE").await;
    let eleven = app.create_site(&owner, "ELEVEN").await;
    push_old(&app, &nine, 9).await;
    push_old(&app, &eleven, 11).await;

    let s = app.license_status(&owner, &nine.id).await;
    assert_license_status(&s, "all_active", "✅");
    let age = Utc::now() - time(&s["last_activity_at"]).unwrap();
    assert!(
        (Duration::seconds(539)..=Duration::seconds(545)).contains(&age),
        "activity counts at the observation time, 9 min ago: {age}"
    );
    assert_eq!(s["agents"][0]["fresh"], true);

    let s = app.license_status(&owner, &eleven.id).await;
    assert_license_status(&s, "inactive", "❌");
    assert_eq!(reasons(&s), ["no heartbeat for 11 min"]);
    assert_eq!(s["agents"][0]["fresh"], false);
    assert_list_and_summary_agree(&app, &owner).await;

    let r = app
        .patch(
            &format!("/api/v1/licenses/{}", eleven.id),
            &owner,
            json!({"check_interval_seconds": 900}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["status"], "all_active", "{}", r.text);

    let s = app.license_status(&owner, &eleven.id).await;
    assert_eq!(s["check_interval_seconds"], 900);
    assert_license_status(&s, "all_active", "✅");
    assert!(reasons(&s).is_empty(), "{s}");
    assert_eq!(camera_in(&s, "camera-1")["state"], "active");
    let statuses = assert_list_and_summary_agree(&app, &owner).await;
    assert_eq!(statuses["ELEVEN"], "all_active");
    assert_eq!(statuses["NINE"], "all_active");
}

// --- cameras and agent instances -------------------------------------------------------------

#[sqlx::test]
async fn a_camera_dropped_from_the_heartbeat_is_retired_not_inactive(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let s = app.create_site(&owner, "RETIRE").await;
    let instance = Uuid::new_v4();
    let now = Utc::now();
    app.push_ok(
        &s.agent_token,
        &Batch::new(instance).seq(1).cameras([
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::active_at(now)),
        ]),
    )
    .await;
    assert_eq!(
        camera_ids(&app.license_status(&owner, &s.id).await),
        ["camera-1", "camera-2"]
    );

    app.push_ok(
        &s.agent_token,
        &Batch::new(instance)
            .seq(2)
            .camera("camera-1", Camera::active_at(now)),
    )
    .await;
    let status = app.license_status(&owner, &s.id).await;
    assert_eq!(camera_ids(&status), ["camera-1"]);
    assert_license_status(&status, "all_active", "✅");
    assert!(reasons(&status).is_empty(), "{status}");

    let r = app
        .get(
            &format!("/api/v1/licenses/{}/cameras/camera-2/status", s.id),
            &owner,
        )
        .await;
    r.assert_problem(404);
    assert_list_and_summary_agree(&app, &owner).await;

    // Dropping the last camera leaves a license without cameras.
    app.push_ok(&s.agent_token, &Batch::new(instance).seq(3))
        .await;
    let status = app.license_status(&owner, &s.id).await;
    assert_eq!(status["cameras"], json!([]));
    assert_license_status(&status, "inactive", "❌");
    assert_eq!(reasons(&status), ["no cameras configured"]);
    assert_list_and_summary_agree(&app, &owner).await;
}

#[sqlx::test]
async fn a_late_replay_from_another_instance_does_not_take_a_camera_from_the_fresh_instance_reporting_it(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let s = app.create_site(&owner, "TAKEOVER").await;
    let now = Utc::now();
    // The site's current agent reports camera-1 now...
    let current = Uuid::new_v4();
    app.push_ok(
        &s.agent_token,
        &Batch::new(current)
            .seq(1)
            .camera("camera-1", Camera::active_at(now)),
    )
    .await;
    // ...then the box it replaced comes back and replays a heartbeat from 11 minutes ago.
    let old = now - Duration::minutes(11);
    push_old_from(
        &app,
        &s,
        Uuid::new_v4(),
        "old-box",
        11,
        &[("camera-1", Camera::report("offline", 0, false, None))],
    )
    .await;

    // SPEC section 4: a camera's state comes from the newest fresh heartbeat that lists it.
    let status = app.license_status(&owner, &s.id).await;
    let c1 = camera_in(&status, "camera-1");
    assert_eq!(c1["instance_id"], current.to_string(), "{status}");
    assert_eq!(c1["state"], "active", "{status}");
    assert_license_status(&status, "all_active", "✅");
    assert_eq!(time(&c1["observed_at"]).map(|t| t > old), Some(true));
    assert_list_and_summary_agree(&app, &owner).await;
}

#[sqlx::test]
async fn two_agent_instances_report_their_own_cameras_and_a_silent_one_leaves_its_cameras_inactive(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let now = Utc::now();

    // Both instances fresh: the cameras of both are listed.
    let both = app.create_site(&owner, "BOTH").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for (instance, host, cam) in [(a, "box-a", "camera-1"), (b, "box-b", "camera-2")] {
        let cameras = [(cam, Camera::active_at(now))];
        push_from(&app, &both, instance, host, Utc::now(), now, &cameras).await;
    }
    let s = app.license_status(&owner, &both.id).await;
    assert_eq!(camera_ids(&s), ["camera-1", "camera-2"]);
    assert_eq!(camera_in(&s, "camera-1")["instance_id"], a.to_string());
    assert_eq!(camera_in(&s, "camera-2")["instance_id"], b.to_string());
    assert_eq!(s["agents"].as_array().unwrap().len(), 2);
    assert_license_status(&s, "all_active", "✅");
    assert!(reasons(&s).is_empty(), "{s}");

    // Instance B's only heartbeat is 11 minutes old while A is fresh.
    let split = app.create_site(&owner, "SPLIT").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let old = now - Duration::minutes(11);
    push_old_from(
        &app,
        &split,
        b,
        "box-b",
        11,
        &[("camera-2", Camera::active_at(old))],
    )
    .await;
    let cameras = [("camera-1", Camera::active_at(Utc::now()))];
    push_from(&app, &split, a, "box-a", Utc::now(), Utc::now(), &cameras).await;

    let s = app.license_status(&owner, &split.id).await;
    assert_eq!(camera_ids(&s), ["camera-1", "camera-2"]);
    assert_eq!(camera_in(&s, "camera-1")["state"], "active");
    let c2 = camera_in(&s, "camera-2");
    assert_eq!(c2["state"], "inactive", "{c2}");
    assert_eq!(c2["active"], false);
    assert_eq!(c2["video_feed"]["live"], false);
    assert_license_status(&s, "partially_active", "⚠️");
    assert_eq!(
        reasons(&s),
        ["camera-2 not reported for 11 min (its agent is silent)"]
    );
    let agents = s["agents"].as_array().unwrap();
    let fresh: BTreeMap<&str, bool> = agents
        .iter()
        .map(|a| {
            (
                a["hostname"].as_str().unwrap(),
                a["fresh"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(fresh, BTreeMap::from([("box-a", true), ("box-b", false)]));

    let statuses = assert_list_and_summary_agree(&app, &owner).await;
    assert_eq!(statuses["SPLIT"], "partially_active");
}

#[sqlx::test]
async fn a_camera_moving_between_two_fresh_instances_is_counted_once_by_the_list_and_the_summary(
    pool: PgPool,
) {
    // The list and the summary read per-instance camera counts that the writer keeps; a camera
    // taken over by a sibling instance must leave the old owner's count in the same commit.
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let s = app.create_site(&owner, "MOVING").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let send =
        |instance: Uuid, host: &'static str, seq: u64, cameras: Vec<(&'static str, Camera)>| {
            let app = &app;
            let agent = s.agent_token.clone();
            async move {
                let now = Utc::now();
                let batch = Batch::new(instance)
                    .hostname(host)
                    .sent_at(now)
                    .seq(seq)
                    .observed_at(now)
                    .cameras(cameras);
                app.push_ok(&agent, &batch).await;
            }
        };
    let list_counts = |status: Value| {
        (
            status["status"].as_str().unwrap().to_owned(),
            camera_ids(&status).len(),
        )
    };

    send(
        a,
        "box-a",
        1,
        vec![
            ("camera-1", Camera::active_at(Utc::now())),
            ("camera-2", Camera::active_at(Utc::now())),
        ],
    )
    .await;
    assert_eq!(
        list_counts(app.license_status(&owner, &s.id).await),
        ("all_active".to_owned(), 2)
    );
    assert_list_and_summary_agree(&app, &owner).await;

    // B takes camera-2 over (newer activity), reporting it offline.
    send(
        b,
        "box-b",
        1,
        vec![("camera-2", Camera::report("offline", 0, false, None))],
    )
    .await;
    let status = app.license_status(&owner, &s.id).await;
    assert_eq!(camera_in(&status, "camera-2")["instance_id"], b.to_string());
    assert_eq!(list_counts(status), ("partially_active".to_owned(), 2));
    assert_list_and_summary_agree(&app, &owner).await;

    // A reports it running again and takes it back; B no longer lists it.
    send(
        a,
        "box-a",
        2,
        vec![
            ("camera-1", Camera::active_at(Utc::now())),
            ("camera-2", Camera::active_at(Utc::now())),
        ],
    )
    .await;
    send(b, "box-b", 2, vec![]).await;
    let status = app.license_status(&owner, &s.id).await;
    assert_eq!(camera_in(&status, "camera-2")["instance_id"], a.to_string());
    assert_eq!(list_counts(status), ("all_active".to_owned(), 2));
    assert_list_and_summary_agree(&app, &owner).await;

    // A retires camera-1: one camera left, still all active.
    send(
        a,
        "box-a",
        3,
        vec![("camera-2", Camera::active_at(Utc::now()))],
    )
    .await;
    assert_eq!(
        list_counts(app.license_status(&owner, &s.id).await),
        ("all_active".to_owned(), 1)
    );
    let statuses = assert_list_and_summary_agree(&app, &owner).await;
    assert_eq!(statuses["MOVING"], "all_active");
}

// --- SPEC section 3: time ----------------------------------------------------------------------

#[sqlx::test]
async fn an_agent_clock_five_minutes_ahead_counts_at_receive_time_and_is_shown(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;

    // A live heartbeat from an agent whose clock is 5 min fast.
    let fast = app.create_site(&owner, "FAST").await;
    let before = Utc::now();
    let ahead = before + Duration::minutes(5);
    let cameras = [("camera-1", Camera::active_at(ahead))];
    push_from(
        &app,
        &fast,
        Uuid::new_v4(),
        "fast-box",
        ahead,
        ahead,
        &cameras,
    )
    .await;
    let after = Utc::now();

    let s = app.license_status(&owner, &fast.id).await;
    assert_license_status(&s, "all_active", "✅");
    assert_eq!(reasons(&s), ["agent clock 5 min ahead"]);
    let activity = time(&s["last_activity_at"]).unwrap();
    let slack = Duration::seconds(1);
    assert!(
        before - slack <= activity && activity <= after + slack,
        "activity at receive time, not in the future: {activity} not in {before}..{after}"
    );
    let agent = &s["agents"][0];
    let offset = agent["clock_offset_seconds"].as_f64().unwrap();
    assert!((290.0..=300.5).contains(&offset), "{agent}");
    assert_eq!(agent["clock_warning"], true, "{agent}");
    assert_eq!(agent["fresh"], true, "{agent}");
    let c = camera_in(&s, "camera-1");
    assert_eq!(c["state"], "active");
    for field in [&c["observed_at"], &c["video_feed"]["last_frame_at"]] {
        let t = time(field).unwrap();
        assert!(
            before - slack <= t && t <= after + slack,
            "agent times are shown on the server's clock: {c}"
        );
    }

    // A replay from the same kind of fast agent counts at its corrected observation time.
    let replay = app.create_site(&owner, "REPLAY").await;
    let sent = Utc::now() + Duration::minutes(5);
    let observed = sent - Duration::minutes(11);
    let cameras = [("camera-1", Camera::active_at(observed))];
    push_from(
        &app,
        &replay,
        Uuid::new_v4(),
        "fast-box",
        sent,
        observed,
        &cameras,
    )
    .await;
    let s = app.license_status(&owner, &replay.id).await;
    assert_license_status(&s, "inactive", "❌");
    assert_eq!(reasons(&s), ["no heartbeat for 11 min"]);

    // A clock 2 min behind is shown too.
    let slow = app.create_site(&owner, "SLOW").await;
    let behind = Utc::now() - Duration::minutes(2);
    let cameras = [("camera-1", Camera::active_at(behind))];
    push_from(
        &app,
        &slow,
        Uuid::new_v4(),
        "slow-box",
        behind,
        behind,
        &cameras,
    )
    .await;
    let s = app.license_status(&owner, &slow.id).await;
    assert_license_status(&s, "all_active", "✅");
    assert_eq!(reasons(&s), ["agent clock 2 min behind"]);
    assert_eq!(s["agents"][0]["clock_warning"], true);

    assert_list_and_summary_agree(&app, &owner).await;
}

// --- the list and the summary agree with the Activity Status ----------------------------------

#[sqlx::test]
async fn the_license_list_and_the_summary_agree_with_the_activity_status_in_every_case(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let now = Utc::now();
    let stopped = || Camera::report("stopped", 0, false, None);
    let mut expected: BTreeMap<String, &str> = BTreeMap::new();

    app.create_site(&owner, "never").await;
    expected.insert("never".into(), "not_installed");

    let s = app.create_site(&owner, "stale").await;
    push_old(&app, &s, 11).await;
    expected.insert("stale".into(), "inactive");

    let s = app.create_site(&owner, "stale-mixed").await;
    let old = now - Duration::minutes(11);
    push_old_from(
        &app,
        &s,
        Uuid::new_v4(),
        "box",
        11,
        &[
            ("camera-1", Camera::active_at(old)),
            ("camera-2", stopped()),
        ],
    )
    .await;
    expected.insert("stale-mixed".into(), "inactive");

    let s = app.create_site(&owner, "nothing-works").await;
    push_fresh(
        &app,
        &s,
        &[
            ("camera-1", stopped()),
            ("camera-2", Camera::report("starting", -1, false, None)),
            ("camera-3", Camera::report("running", 90, false, Some(now))),
        ],
    )
    .await;
    expected.insert("nothing-works".into(), "inactive");

    let s = app.create_site(&owner, "no-cameras").await;
    push_fresh(&app, &s, &[]).await;
    expected.insert("no-cameras".into(), "inactive");

    let s = app.create_site(&owner, "starving").await;
    push_fresh(
        &app,
        &s,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::report("running", 60, false, Some(now))),
        ],
    )
    .await;
    expected.insert("starving".into(), "partially_active");

    let s = app.create_site(&owner, "degraded-only").await;
    push_fresh(
        &app,
        &s,
        &[("camera-1", Camera::report("running", 42, true, Some(now)))],
    )
    .await;
    expected.insert("degraded-only".into(), "partially_active");

    let s = app.create_site(&owner, "webhooks").await;
    let failing = json!({"webhooks": {"status": "failing", "cached": 3}});
    push_fresh(
        &app,
        &s,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::active_at(now).with(failing)),
        ],
    )
    .await;
    expected.insert("webhooks".into(), "partially_active");

    let s = app.create_site(&owner, "all").await;
    push_fresh(
        &app,
        &s,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::active_at(now)),
        ],
    )
    .await;
    expected.insert("all".into(), "all_active");

    let s = app.create_site(&owner, "retired").await;
    let instance = Uuid::new_v4();
    let both = [
        ("camera-1", Camera::active_at(now)),
        ("camera-2", stopped()),
    ];
    app.push_ok(&s.agent_token, &Batch::new(instance).seq(1).cameras(both))
        .await;
    app.push_ok(
        &s.agent_token,
        &Batch::new(instance)
            .seq(2)
            .camera("camera-1", Camera::active_at(now)),
    )
    .await;
    expected.insert("retired".into(), "all_active");

    let s = app.create_site(&owner, "split").await;
    push_old_from(
        &app,
        &s,
        Uuid::new_v4(),
        "box-b",
        11,
        &[("camera-2", Camera::active_at(old))],
    )
    .await;
    push_fresh(&app, &s, &[("camera-1", Camera::active_at(now))]).await;
    expected.insert("split".into(), "partially_active");

    let s = app.create_site(&owner, "two-fresh").await;
    push_fresh(&app, &s, &[("camera-1", Camera::active_at(now))]).await;
    push_fresh(&app, &s, &[("camera-2", Camera::active_at(now))]).await;
    expected.insert("two-fresh".into(), "all_active");

    let s = app.create_site(&owner, "ahead").await;
    let ahead = Utc::now() + Duration::minutes(5);
    let cameras = [("camera-1", Camera::active_at(ahead))];
    push_from(&app, &s, Uuid::new_v4(), "box", ahead, ahead, &cameras).await;
    expected.insert("ahead".into(), "all_active");

    let s = app.create_site(&owner, "nine-min").await;
    push_old(&app, &s, 9).await;
    expected.insert("nine-min".into(), "all_active");

    let s = app.create_site(&owner, "long-interval").await;
    push_old(&app, &s, 11).await;
    app.patch(
        &format!("/api/v1/licenses/{}", s.id),
        &owner,
        json!({"check_interval_seconds": 900}),
    )
    .await
    .assert_status(200);
    expected.insert("long-interval".into(), "all_active");

    let statuses = assert_list_and_summary_agree(&app, &owner).await;
    let statuses: BTreeMap<String, &str> = statuses
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str()))
        .collect();
    assert_eq!(statuses, expected);
}

// --- GET /licenses/{id}/heartbeat ----------------------------------------------------------------

#[sqlx::test]
async fn the_heartbeat_endpoint_answers_in_the_edge_shape_200_when_everything_works_else_500(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let now = Utc::now();
    let heartbeat_of = |id: &str| format!("/api/v1/licenses/{id}/heartbeat");

    let ok = app.create_site(&owner, "OK").await;
    let file_camera = Camera::active_at(now).with(json!({"buffered_frames": 3.0, "source": "file",
               "file_processing": {"processed_seconds": 12.5, "total_seconds": 60.0}}));
    let new_york = Camera::report("starting", -1, false, None)
        .with(json!({"timezone": "America/New_York", "received_fps": -1.0}));
    push_fresh(
        &app,
        &ok,
        &[("camera-1", file_camera), ("camera-2", new_york)],
    )
    .await;
    let r = app.get(&heartbeat_of(&ok.id), &owner).await;
    r.assert_status(200);
    let status = app.license_status(&owner, &ok.id).await;
    let observed = time(&camera_in(&status, "camera-1")["observed_at"]).unwrap();
    let berlin = last_checked(observed, chrono_tz::Europe::Berlin);
    let ny = last_checked(observed, chrono_tz::America::New_York);
    assert_eq!(
        r.body,
        json!({"version": "0.1.0", "cameras": {
            "camera-1": {"health": 95, "status": "running", "last_checked": berlin,
                         "received_fps": 25.0, "buffered_frames": 3.0,
                         "file_processing": {"processed_seconds": 12.5, "total_seconds": 60.0}},
            "camera-2": {"health": -1, "status": "starting", "last_checked": ny,
                         "received_fps": -1.0, "buffered_frames": -1.0,
                         "file_processing": {"processed_seconds": -1.0, "total_seconds": -1.0}},
        }})
    );
    // Byte for byte: the field order of the established edge API.
    let camera_1 = format!(
        r#""camera-1":{{"health":95,"status":"running","last_checked":"{berlin}","received_fps":25.0,"buffered_frames":3.0,"file_processing":{{"processed_seconds":12.5,"total_seconds":60.0}}}}"#
    );
    assert!(r.text.contains(&camera_1), "{}\nwants {camera_1}", r.text);
    assert!(
        berlin.len() == "2026-11-23 11:21:44.904623+01:00".len(),
        "{berlin}"
    );

    // A stopped camera.
    let stopped = app.create_site(&owner, "STOPPED").await;
    push_fresh(
        &app,
        &stopped,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::report("stopped", 0, false, None)),
        ],
    )
    .await;
    let r = app.get(&heartbeat_of(&stopped.id), &owner).await;
    r.assert_status(500);
    assert_eq!(r.body["version"], "0.1.0");
    assert_eq!(r.body["cameras"]["camera-2"]["status"], "stopped");
    assert_eq!(r.body["cameras"]["camera-2"]["health"], 0);
    assert_eq!(r.body["cameras"]["camera-1"]["status"], "running");

    // A stale license whose last report looked perfect.
    let stale = app.create_site(&owner, "STALE").await;
    push_old(&app, &stale, 11).await;
    let r = app.get(&heartbeat_of(&stale.id), &owner).await;
    r.assert_status(500);
    assert_eq!(r.body["cameras"]["camera-1"]["status"], "running");
    assert_eq!(r.body["cameras"]["camera-1"]["health"], 95);

    // Never installed.
    let never = app.create_site(&owner, "NEVER").await;
    let r = app.get(&heartbeat_of(&never.id), &owner).await;
    r.assert_status(500);
    assert_eq!(r.body["cameras"], json!({}));
    assert!(r.body["version"].is_string(), "{}", r.text);
}

// --- one camera, every camera --------------------------------------------------------------------

#[sqlx::test]
async fn camera_status_gives_liveness_bitrate_and_last_frame_and_streams_list_every_camera_of_the_tenant(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await.owner_token;
    let other = app.create_tenant("other").await.owner_token;
    let now = Utc::now();
    // Whole seconds plus half a second: the unix second survives a few ms of clock correction.
    let frame = DateTime::from_timestamp(now.timestamp() - 2, 500_000_000).unwrap();

    let one = app.create_site(&acme, "ONE").await;
    push_fresh(
        &app,
        &one,
        &[
            (
                "camera-1",
                Camera::active_at(frame).with(json!({"bitrate_kbps": 4480})),
            ),
            ("camera-2", Camera::report("starting", -1, false, None)),
        ],
    )
    .await;
    let two = app.create_site(&acme, "TWO").await;
    push_fresh(&app, &two, &[("camera-9", Camera::active_at(now))]).await;
    let foreign = app.create_site(&other, "FOREIGN").await;
    push_fresh(&app, &foreign, &[("camera-x", Camera::active_at(now))]).await;

    let camera_path =
        |license: &str, camera: &str| format!("/api/v1/licenses/{license}/cameras/{camera}/status");
    let r = app.get(&camera_path(&one.id, "camera-1"), &acme).await;
    r.assert_status(200);
    assert_eq!(r.body["is_live"], true);
    assert_eq!(r.body["bitrate"].as_f64(), Some(4480.0), "{}", r.text);
    assert_eq!(r.body["last_frame_time"], frame.timestamp(), "{}", r.text);
    assert_eq!(r.body["camera"]["camera_id"], "camera-1");
    assert_eq!(r.body["camera"]["state"], "active");

    let r = app.get(&camera_path(&one.id, "camera-2"), &acme).await;
    r.assert_status(200);
    assert_eq!(r.body["is_live"], false);
    assert_eq!(r.body["bitrate"].as_f64(), Some(-1.0), "{}", r.text);
    assert_eq!(r.body["last_frame_time"], 0, "never a frame");
    assert_eq!(r.body["camera"]["state"], "starting");

    for (license, camera, token) in [
        (&one.id, "camera-404", &acme),
        (&one.id, "camera-9", &acme),
        (&foreign.id, "camera-x", &acme),
        (&one.id, "camera-1", &other),
    ] {
        app.get(&camera_path(license, camera), token)
            .await
            .assert_problem(404);
    }

    let streams = |token: &str| {
        let app = &app;
        let token = token.to_owned();
        async move {
            let r = app.get("/api/v1/streams/-/status", &token).await;
            r.assert_status(200);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["license_key"].as_str().unwrap().to_owned(),
                        i["camera"]["camera_id"].as_str().unwrap().to_owned(),
                        i["license_id"].as_str().unwrap().to_owned(),
                        i["is_live"].as_bool().unwrap(),
                    )
                })
                .collect::<BTreeSet<_>>()
        }
    };
    let owned = |v: [(&str, &str, &str, bool); 3]| {
        v.iter()
            .map(|(k, c, l, live)| ((*k).to_owned(), (*c).to_owned(), (*l).to_owned(), *live))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        streams(&acme).await,
        owned([
            (one.key.as_str(), "camera-1", one.id.as_str(), true),
            (one.key.as_str(), "camera-2", one.id.as_str(), false),
            (two.key.as_str(), "camera-9", two.id.as_str(), true),
        ])
    );
    assert_eq!(
        streams(&other).await,
        BTreeSet::from([(foreign.key, "camera-x".to_owned(), foreign.id, true)])
    );
}

// --- GET /licenses/{id}/activity ---------------------------------------------------------------

#[sqlx::test]
async fn the_activity_timeline_counts_every_heartbeat_in_its_bucket_and_refuses_bad_ranges(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let s = app.create_site(&owner, "TIMELINE").await;
    let now = Utc::now();
    // Six heartbeats, 4 min apart, the newest now, all in one batch (a spool replay).
    const N: u64 = 6;
    let batch = (0..N).fold(
        Batch::new(Uuid::new_v4()).hostname("box").sent_at(now),
        |batch, k| {
            let observed = now - Duration::minutes(4 * i64::try_from(N - 1 - k).unwrap());
            batch.heartbeat(
                Heartbeat::new(k + 1)
                    .observed_at(observed)
                    .camera("camera-1", Camera::active_at(observed))
                    .camera("camera-2", Camera::report("stopped", 0, false, None)),
            )
        },
    );
    app.push_ok(&s.agent_token, &batch).await;
    let path = format!("/api/v1/licenses/{}/activity", s.id);

    // The default: 24 h until now in 5-minute buckets.
    let r = app.get(&path, &owner).await;
    r.assert_status(200);
    assert_eq!(r.body["bucket_seconds"], 300);
    let buckets = r.body["buckets"].as_array().unwrap();
    let total: i64 = buckets
        .iter()
        .map(|b| b["heartbeats"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 6, "{}", r.text);
    for b in buckets.iter().filter(|b| b["heartbeats"] != 0) {
        assert_eq!(b["cameras"], 2, "{b}");
        assert_eq!(b["active_cameras"], 1, "{b}");
    }

    // The last 10 minutes in 1-minute buckets: the heartbeats of 8, 4 and 0 minutes ago.
    let since = DateTime::from_timestamp(now.timestamp() - 600, 0).unwrap();
    let until = since + Duration::minutes(11);
    let r = app
        .get(
            &format!(
                "{path}?since={}&until={}&bucket=60",
                rfc3339(since),
                rfc3339(until)
            ),
            &owner,
        )
        .await;
    r.assert_status(200);
    let buckets = r.body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 11, "{}", r.text);
    assert_eq!(time(&buckets[0]["start"]), Some(since));
    let counts: Vec<i64> = buckets
        .iter()
        .map(|b| b["heartbeats"].as_i64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<i64>(), 3, "{counts:?}");
    assert_eq!(counts.iter().filter(|&&c| c == 1).count(), 3, "{counts:?}");

    // Bad input.
    let r = app.get(&format!("{path}?bucket=10"), &owner).await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/query/bucket"]);
    for (since, until) in [(until, until), (until, since)] {
        let r = app
            .get(
                &format!("{path}?since={}&until={}", rfc3339(since), rfc3339(until)),
                &owner,
            )
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), ["/query/since"], "{}", r.text);
    }
}

// --- sorting and paging by status ------------------------------------------------------------------

#[sqlx::test]
async fn the_license_list_sorts_by_urgency_and_by_last_activity_and_pages_through_every_license(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let now = Utc::now();

    // Pushed in this order, so their activity times grow in it; N is never installed.
    let i1 = app.create_site(&owner, "I1").await;
    push_old(&app, &i1, 11).await;
    let i2 = app.create_site(&owner, "I2").await;
    push_fresh(&app, &i2, &[]).await;
    let p = app.create_site(&owner, "P").await;
    push_fresh(
        &app,
        &p,
        &[
            ("camera-1", Camera::active_at(now)),
            ("camera-2", Camera::report("offline", 0, false, None)),
        ],
    )
    .await;
    let a1 = app.create_site(&owner, "A1").await;
    push_fresh(&app, &a1, &[("camera-1", Camera::active_at(now))]).await;
    let a2 = app.create_site(&owner, "A2").await;
    push_fresh(&app, &a2, &[("camera-1", Camera::active_at(now))]).await;
    app.create_site(&owner, "N").await;

    let list = |query: String| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let r = app.get(&format!("/api/v1/licenses?{query}"), &owner).await;
            r.assert_status(200);
            let items: Vec<(String, String)> = r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["key"].as_str().unwrap().to_owned(),
                        l["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (items, r.body["next_cursor"].as_str().map(str::to_owned))
        }
    };

    let (by_status, next) = list("sort=status&limit=200".to_owned()).await;
    assert_eq!(next, None);
    let statuses: Vec<&str> = by_status.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "inactive",
            "inactive",
            "partially_active",
            "not_installed",
            "all_active",
            "all_active"
        ]
    );

    let keys =
        |items: &[(String, String)]| items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let (by_recent, _) = list("sort=-last_activity&limit=200".to_owned()).await;
    assert_eq!(keys(&by_recent), ["A2", "A1", "P", "I2", "I1", "N"]);
    let (by_oldest, _) = list("sort=last_activity&limit=200".to_owned()).await;
    assert_eq!(keys(&by_oldest), ["N", "I1", "I2", "P", "A1", "A2"]);

    // One license per page, following the cursor.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = match &cursor {
            Some(c) => format!("sort=status&limit=1&cursor={c}"),
            None => "sort=status&limit=1".to_owned(),
        };
        let (items, next) = list(query).await;
        assert_eq!(items.len(), 1);
        paged.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(keys(&paged), keys(&by_status), "every license exactly once");
    assert_eq!(keys(&paged).into_iter().collect::<BTreeSet<_>>().len(), 6);
}
