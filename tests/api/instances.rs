//! Agent instances per license (SPEC section 2): a new instance past the cap
//! (`ingest.max_instances_per_license`) gets 409 and nothing of it is stored, while the
//! license's other instances and other licenses are served; the hourly maintenance prunes
//! instances silent for a week, which frees their places.

use crate::helpers::*;
use chrono::{Duration, Utc};
use sqlx::PgPool;
use streamwatch::notify::scheduler::maintenance;
use uuid::Uuid;

/// The license's instance ids, in id order.
async fn instances(app: &TestApp, license_id: &str) -> Vec<Uuid> {
    sqlx::query_scalar(
        "SELECT instance_id FROM agent_instances WHERE license_id = $1::uuid ORDER BY instance_id",
    )
    .bind(license_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Pushes heartbeat `seq` of `instance`, with `camera-1` active, and asserts it was accepted.
async fn report(app: &TestApp, site: &TestSite, instance: Uuid, seq: u64) {
    app.push_ok(
        &site.agent_token,
        &Batch::new(instance).seq(seq).active_camera(),
    )
    .await;
}

/// Asserts a 409 naming `/agent/instance_id`, the cap, the setting and the pruning.
#[track_caller]
fn assert_refused(r: &TestResponse, cap: usize) {
    r.assert_problem(409);
    assert_eq!(r.pointers(), ["/agent/instance_id"], "{}", r.text);
    let detail = r.body["detail"].as_str().unwrap();
    for part in [
        &format!("already has {cap} agent instances"),
        "STREAMWATCH__INGEST__MAX_INSTANCES_PER_LICENSE",
        "silent for 7 days is pruned",
        "nothing of this batch was stored",
    ] {
        assert!(detail.contains(part), "{part:?} missing from: {detail}");
    }
}

#[sqlx::test]
async fn a_ninth_instance_gets_409_and_nothing_of_it_is_stored_while_the_eight_and_other_licenses_are_served(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-A").await;
    let (_, other) = app.create_tenant_with_site("other", "LIC-O").await;
    let eight: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for &instance in &eight {
        report(&app, &site, instance, 1).await;
    }
    let before = (
        app.rows("agent_instances").await,
        app.rows("licenses").await,
    );
    let (heartbeats, cameras) = (
        app.count("heartbeats").await,
        app.count("camera_state").await,
    );

    let ninth = Uuid::new_v4();
    let r = app
        .push(
            &site.agent_token,
            &Batch::new(ninth)
                .seqs(1..=3)
                .camera("camera-9", Camera::active()),
        )
        .await;
    assert_refused(&r, 8);
    assert_eq!(
        (
            app.rows("agent_instances").await,
            app.rows("licenses").await
        ),
        before,
        "no instance row, and the license's roll-up is untouched"
    );
    assert_eq!(app.count("heartbeats").await, heartbeats);
    assert_eq!(app.count("camera_state").await, cameras);
    // Sent again (an agent keeps spooling and retries), still refused.
    assert_refused(
        &app.push(&site.agent_token, &Batch::new(ninth).seq(1)).await,
        8,
    );

    // The eight keep being served, and the license's status counts them.
    for &instance in &eight {
        report(&app, &site, instance, 2).await;
    }
    assert_eq!(instances(&app, &site.id).await.len(), 8);
    let license: i32 = sqlx::query_scalar("SELECT instances FROM licenses WHERE id = $1::uuid")
        .bind(&site.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(license, 8);
    // Another license has its own eight places.
    for _ in 0..8 {
        report(&app, &other, Uuid::new_v4(), 1).await;
    }
    assert_eq!(instances(&app, &other.id).await.len(), 8);
}

#[sqlx::test]
async fn the_setting_changes_the_cap_and_a_batch_admits_new_instances_in_arrival_order(
    pool: PgPool,
) {
    let app = TestApp::spawn_with(pool, |s| s.ingest.max_instances_per_license = 2).await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-A").await;
    let (first, second, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    report(&app, &site, first, 1).await;
    report(&app, &site, second, 1).await;
    assert_refused(
        &app.push(&site.agent_token, &Batch::new(third).seq(1)).await,
        2,
    );
    assert_eq!(instances(&app, &site.id).await.len(), 2);

    // The writer's single step, with two new instances in one batch and room for one: the
    // first to arrive gets in, the second is refused, the known instance is served.
    let (tenant_id, license_id) =
        sqlx::query_as::<_, (Uuid, Uuid)>("SELECT tenant_id, id FROM licenses WHERE id = $1::uuid")
            .bind(&site.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let license = streamwatch::ingest::batch::AgentLicense {
        tenant_id,
        license_id,
    };
    let request = |instance: Uuid, seq: u64| streamwatch::ingest::batch::IngestRequest {
        license,
        token_id: None,
        batch: serde_json::from_value(Batch::new(instance).seq(seq).to_json()).unwrap(),
        received_at: Utc::now(),
    };
    let (late, later) = (Uuid::new_v4(), Uuid::new_v4());
    let outcomes = streamwatch::ingest::batch::write_batch(
        &app.pool,
        &[&request(later, 1), &request(first, 2), &request(late, 1)],
        3,
    )
    .await
    .unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert_eq!(outcomes[1].unwrap().accepted, 1);
    assert_eq!(
        outcomes[2].unwrap_err(),
        streamwatch::ingest::batch::Refused::TooManyInstances(
            streamwatch::ingest::batch::InstanceCapReached { limit: 3 }
        )
    );
    let mut expected = vec![first, second, later];
    expected.sort();
    assert_eq!(instances(&app, &site.id).await, expected);
}

#[sqlx::test]
async fn instances_silent_for_a_week_are_pruned_with_their_cameras_and_free_their_places(
    pool: PgPool,
) {
    let app = TestApp::spawn_with(pool, |s| s.ingest.max_instances_per_license = 3).await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-A").await;
    let (_, quiet) = app.create_tenant_with_site("quiet", "LIC-Q").await;
    let (gone, stays, live) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    app.push_ok(
        &site.agent_token,
        &Batch::new(gone)
            .seq(1)
            .camera("camera-old", Camera::active()),
    )
    .await;
    report(&app, &site, stays, 1).await;
    report(&app, &site, live, 1).await;
    // The other license's only agent went silent as well.
    let lonely = Uuid::new_v4();
    report(&app, &quiet, lonely, 1).await;
    let newcomer = Uuid::new_v4();
    assert_refused(
        &app.push(&site.agent_token, &Batch::new(newcomer).seq(1))
            .await,
        3,
    );

    // `gone` and `lonely` last reported 8 days ago; `stays` 6 days ago.
    let back = |instance: Uuid, days: i64| {
        let at = Utc::now() - Duration::days(days);
        sqlx::query(
            "UPDATE agent_instances SET last_received_at = $2, last_activity_at = $2
             WHERE instance_id = $1",
        )
        .bind(instance)
        .bind(at)
        .execute(&app.pool)
    };
    back(gone, 8).await.unwrap();
    back(lonely, 8).await.unwrap();
    back(stays, 6).await.unwrap();
    // The hourly maintenance, as the scheduler runs it.
    maintenance(&app.pool, Utc::now(), 30).await.unwrap();

    let mut left = vec![stays, live];
    left.sort();
    assert_eq!(instances(&app, &site.id).await, left);
    // Its camera, which no other instance lists, is retired with it; the roll-up follows.
    let cameras: Vec<String> = sqlx::query_scalar(
        "SELECT camera_id FROM camera_state WHERE license_id = $1::uuid ORDER BY camera_id",
    )
    .bind(&site.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(cameras, ["camera-1"]);
    let (count, total): (i32, i32) =
        sqlx::query_as("SELECT instances, cameras_total FROM licenses WHERE id = $1::uuid")
            .bind(&site.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((count, total), (2, 1));
    // A license's newest instance is kept even when silent: it holds the last activity that
    // its status and its notifications read (inactive for 8 days, not "not installed").
    assert_eq!(instances(&app, &quiet.id).await, [lonely]);
    let owner = app.login("owner@quiet.test", PASSWORD).await;
    assert_eq!(
        app.license_status(&owner, &quiet.id).await["status"],
        "inactive"
    );

    // The freed place takes the new instance; the history of the pruned one stays.
    report(&app, &site, newcomer, 1).await;
    assert_eq!(instances(&app, &site.id).await.len(), 3);
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM heartbeats WHERE instance_id = $1")
        .bind(gone)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(history, 1);
}

#[sqlx::test]
async fn new_instances_racing_for_the_last_places_never_pass_the_cap(pool: PgPool) {
    // Two writers (the default) and requests sent all at once: the license lock each writer
    // takes before it counts is what keeps them from both seeing room.
    let app = std::sync::Arc::new(
        TestApp::spawn_with(pool, |s| s.ingest.max_instances_per_license = 5).await,
    );
    let (_, site) = app.create_tenant_with_site("acme", "LIC-A").await;
    let mut pushes = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, token) = (app.clone(), site.agent_token.clone());
        pushes.spawn(async move {
            app.push(&token, &Batch::one_active_camera())
                .await
                .status
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = pushes.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [[200; 5].as_slice(), &[409; 15]].concat());
    assert_eq!(instances(&app, &site.id).await.len(), 5);
}
