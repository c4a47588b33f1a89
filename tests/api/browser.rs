//! The web UI in a real headless Chromium (SPEC section 8), driven through chromedriver with
//! fantoccini. Debian's `chromium` and `chromium-driver` must be installed: without them these
//! tests fail (they never skip).
//!
//! Every test seeds a fresh tenant with one license in each of the four states, through the
//! API and the ingest endpoint, plus a viewer. Waiting is always bounded polling of the page;
//! no assertion depends on how long something took.
//!
//! Screenshots of every page visited go to `target/ui-screenshots/`. With
//! `UPDATE_SCREENSHOTS=1` the three main pages are also copied to `docs/screenshots/`, which
//! `docs/UI.md` shows.

use crate::helpers::*;
use chrono::{Duration as Age, Utc};
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    future::Future,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use uuid::Uuid;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
const PACKAGES: &str = "Debian packages `chromium` and `chromium-driver` \
                        (apt-get install -y --no-install-recommends chromium chromium-driver)";
/// Screenshots that `docs/UI.md` shows (copied with `UPDATE_SCREENSHOTS=1`).
const DOC_SHOTS: &[&str] = &["monitoring", "activity-status", "setup-notification"];

// --- the browser -------------------------------------------------------------------------------

/// A chromedriver on a free port with one Chromium session. Dropping it kills chromedriver and
/// the browser it started (their process group) and removes the browser profile.
struct Browser {
    client: Client,
    driver: Child,
    profile: PathBuf,
    base: String,
}

impl Browser {
    async fn start(base: &str) -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the browser tests need the {PACKAGES}"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that Drop can end it together with the browser.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMEDRIVER} ({e}): the browser tests need the {PACKAGES}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..150 {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("{CHROMEDRIVER} exited at start ({status})");
            }
            if probe
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            kill_group(&mut driver);
            panic!("{CHROMEDRIVER} did not answer on port {port} within 15 s");
        }
        let profile = std::env::temp_dir().join(format!("streamwatch-chromium-{}", Uuid::new_v4()));
        let caps = json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--window-size=1280,900",
            format!("--user-data-dir={}", profile.display()),
        ]}});
        let Value::Object(caps) = caps else {
            unreachable!("an object literal")
        };
        let connected = ClientBuilder::rustls()
            .expect("a TLS connector")
            .capabilities(caps)
            .connect(&url)
            .await;
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                kill_group(&mut driver);
                panic!("no Chromium session through {CHROMEDRIVER}: {e}");
            }
        };
        Self {
            client,
            driver,
            profile,
            base: base.to_owned(),
        }
    }

    /// Ends the session cleanly (Drop is the fallback for a failed test).
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The element, once it is there (at most 10 s).
    async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let shot = self.screenshot(&format!("missing-{}", slug(css))).await;
                panic!(
                    "no {css} on {} ({e}); screenshot: {}",
                    self.path().await,
                    shot.display()
                )
            }
        }
    }

    /// Whether the page has such an element now (no waiting).
    async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap().trim().to_owned()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn set_checkbox(&self, css: &str, on: bool) {
        let b = self.find(css).await;
        if b.is_selected().await.unwrap() != on {
            b.click().await.unwrap();
        }
        assert_eq!(b.is_selected().await.unwrap(), on, "{css}");
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn js(&self, script: &str) -> Result<Value, fantoccini::error::CmdError> {
        self.client.execute(script, Vec::new()).await
    }

    /// Polls until the current path satisfies `ok` (at most 10 s).
    async fn wait_for_path(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        eventually(what, Duration::from_secs(10), || async {
            let p = self.path().await;
            ok(&p).then_some(p)
        })
        .await
    }

    /// Logs in through the form and waits for the Monitoring page.
    async fn login(&self, email: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#login").await;
        self.wait_for_path("the Monitoring page after login", |p| p == "/")
            .await;
        self.find("#count-total").await;
    }

    /// The rows of the Monitoring page: key, row class, symbol, accessible label, cameras.
    async fn rows(&self) -> Result<Vec<Row>, fantoccini::error::CmdError> {
        let v = self
            .js(r#"return Array.from(document.querySelectorAll("tr[data-license]")).map(function (r) {
                var a = r.querySelector("a.symbol");
                return {key: r.getAttribute("data-license"), class: r.className,
                        symbol: a.querySelector("[aria-hidden]").textContent.trim(),
                        label: a.getAttribute("aria-label"), title: a.getAttribute("title"),
                        cameras: r.querySelector("td.cameras").textContent.trim(),
                        href: a.getAttribute("href")};
            });"#)
            .await?;
        Ok(serde_json::from_value(v).unwrap())
    }

    async fn keys(&self) -> Vec<String> {
        self.rows()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect()
    }

    /// Saves a PNG of the viewport to `target/ui-screenshots/<name>.png` (and, for the pages
    /// the docs show, to `docs/screenshots/` when `UPDATE_SCREENSHOTS=1`).
    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        if DOC_SHOTS.contains(&name) && std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Kills chromedriver and everything in its process group (the browser), by its id.
///
/// Not `kill -KILL -<pgid>`: Debian 12's procps-ng 4.0.2 `kill` reads that negative pid as -1
/// and SIGKILLs every process the user may signal (the test runner, PostgreSQL, the CI job).
/// `pkill -g` takes the group as an option's value, with no sign to misread.
fn kill_group(driver: &mut Child) {
    let pgid = driver.id();
    // Group 0 would be pkill's own group; chromedriver's id is never 0 or 1, but be certain.
    if pgid > 1 {
        let _ = Command::new("pkill")
            .args(["-KILL", "-g", &pgid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let _ = driver.kill();
    let _ = driver.wait();
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Polls `probe` every 250 ms until it yields a value; fails after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Debug, serde::Deserialize)]
struct Row {
    key: String,
    class: String,
    symbol: String,
    label: String,
    title: String,
    cameras: String,
    href: String,
}

// --- the seeded world ----------------------------------------------------------------------------

/// A tenant with one license in each state and a viewer.
struct World {
    app: TestApp,
    tenant: TestTenant,
    /// ✅ All Active: two running, live, healthy cameras.
    all_active: TestSite,
    /// ⚠️ Partially Active: one camera starving.
    partial: TestSite,
    /// ❌ Inactive: the last heartbeat is 11 minutes old (check interval 10 min).
    inactive: TestSite,
    /// ✘ Not Installed: never reported.
    not_installed: TestSite,
}

const VIEWER: &str = "viewer@acme.test";

async fn license(app: &TestApp, owner: &str, key: &str, name: &str) -> TestSite {
    app.create_site_with(
        owner,
        json!({"key": key, "name": name, "kind": "direct", "check_interval_seconds": 600}),
    )
    .await
}

/// A running, live, healthy camera at `url`.
fn camera(url: &str) -> Camera {
    Camera::active().with(json!({"url": url, "bitrate_kbps": 2048.0, "buffered_frames": 3.0}))
}

/// Connected but no frame for a while: `starving`.
fn starving_camera(url: &str) -> Camera {
    camera(url).with(json!({"is_live": false, "health": 40, "received_fps": 0.0,
                            "last_frame_at": Utc::now() - Age::seconds(45),
                            "last_error": "no frame for 45 s"}))
}

/// Heartbeat 1 of a new agent instance, observed `minutes_ago` and sent now (counted at its
/// observation time).
fn batch_observed(minutes_ago: i64, cameras: [(&str, Camera); 2]) -> Batch {
    let now = Utc::now();
    Batch::new(Uuid::new_v4())
        .sent_at(now)
        .seq(1)
        .observed_at(now - Age::minutes(minutes_ago))
        .cameras(cameras)
}

impl World {
    async fn seed(pool: PgPool) -> Self {
        let app = TestApp::spawn(pool).await;
        let tenant = app.create_tenant("acme").await;
        let owner = tenant.owner_token.clone();
        let all_active = license(&app, &owner, "gate-north", "North Gate").await;
        let partial = license(&app, &owner, "dock-east", "East Dock").await;
        let inactive = license(&app, &owner, "yard-west", "West Yard").await;
        let not_installed = license(&app, &owner, "depot-south", "South Depot").await;
        app.push_ok(
            &all_active.agent_token,
            &Batch::new(Uuid::new_v4()).seq(1).cameras([
                ("entrance", camera("rtsp://10.0.1.11/main")),
                ("barrier", camera("rtsp://10.0.1.12/main")),
            ]),
        )
        .await;
        app.push_ok(
            &partial.agent_token,
            &Batch::new(Uuid::new_v4()).seq(1).cameras([
                ("ramp", camera("rtsp://10.0.2.11/main")),
                ("bay-3", starving_camera("rtsp://10.0.2.12/main")),
            ]),
        )
        .await;
        app.push_ok(
            &inactive.agent_token,
            &batch_observed(
                11,
                [
                    ("fence", camera("rtsp://10.0.3.11/main")),
                    ("gate", camera("rtsp://10.0.3.12/main")),
                ],
            ),
        )
        .await;
        app.create_user(&owner, VIEWER, "viewer").await;
        Self {
            app,
            tenant,
            all_active,
            partial,
            inactive,
            not_installed,
        }
    }

    async fn browser(&self) -> Browser {
        Browser::start(&self.app.address).await
    }

    /// A browser with the owner logged in, on the Monitoring page.
    async fn owner(&self) -> Browser {
        let b = self.browser().await;
        b.login(&self.tenant.owner_email, PASSWORD).await;
        b
    }

    async fn settings(&self, site: &TestSite) -> Value {
        self.app
            .notification_settings(&self.tenant.owner_token, &site.id)
            .await
    }
}

// --- tests -----------------------------------------------------------------------------------------

#[sqlx::test]
async fn login_shows_an_error_for_a_wrong_password_and_lands_on_monitoring_with_the_right_one(
    pool: PgPool,
) {
    let w = World::seed(pool).await;
    let b = w.browser().await;
    b.goto("/").await;
    b.wait_for_path("the login page", |p| p.starts_with("/login"))
        .await;
    b.find("#email").await;
    b.screenshot("login").await;

    b.fill("#email", &w.tenant.owner_email).await;
    b.fill("#password", "not the password").await;
    b.click("#login").await;
    let error = b.text("#login-error").await;
    assert_eq!(error, "Wrong e-mail address or password.");
    assert!(b.path().await.starts_with("/login"));
    b.screenshot("login-error").await;

    b.fill("#email", &w.tenant.owner_email).await;
    b.fill("#password", PASSWORD).await;
    b.click("#login").await;
    b.wait_for_path("the Monitoring page", |p| p == "/").await;
    assert_eq!(b.text("h1").await, "Monitoring");
    assert_eq!(b.text("#count-total").await, "4");
    assert!(!b.has("#login-error").await);
    b.close().await;
}

#[sqlx::test]
async fn the_monitoring_page_shows_each_licenses_status_symbol_and_the_counts(pool: PgPool) {
    let w = World::seed(pool).await;
    let b = w.owner().await;
    assert_eq!(b.text("#count-total").await, "4");
    for status in [
        "all_active",
        "partially_active",
        "inactive",
        "not_installed",
    ] {
        assert_eq!(
            b.text(&format!("#count-{status} b")).await,
            "1",
            "count of {status}"
        );
    }
    let rows = b.rows().await.unwrap();
    // Most urgent first.
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["yard-west", "dock-east", "depot-south", "gate-north"],
        "{rows:#?}"
    );
    let expected = [
        ("gate-north", "✅", "All Active", "ok", "2/2", &w.all_active),
        (
            "dock-east",
            "⚠️",
            "Partially Active",
            "warn",
            "1/2",
            &w.partial,
        ),
        ("yard-west", "❌", "Inactive", "bad", "0/2", &w.inactive),
        (
            "depot-south",
            "✘",
            "Not Installed",
            "none",
            "0/0",
            &w.not_installed,
        ),
    ];
    for (key, symbol, label, class, cameras, site) in expected {
        let row = rows.iter().find(|r| r.key == key).unwrap();
        assert_eq!(row.symbol, symbol, "{key}");
        assert_eq!(row.label, format!("{label}: open Activity Status"), "{key}");
        assert_eq!(row.title, row.label, "{key}: the tooltip");
        assert_eq!(row.class, class, "{key}");
        assert_eq!(row.cameras, cameras, "{key}");
        assert_eq!(row.href, format!("/licenses/{}", site.id), "{key}");
        let link = b
            .find(&format!(r#"tr[data-license="{key}"] a.symbol"#))
            .await;
        assert!(link.is_displayed().await.unwrap(), "{key}: symbol hidden");
    }
    let legend = b.text(".legend").await;
    for part in [
        "✅ All Active",
        "⚠️ Partially Active",
        "❌ Inactive",
        "✘ Not Installed",
    ] {
        assert!(legend.contains(part), "legend: {legend}");
    }
    b.screenshot("monitoring").await;
    b.close().await;
}

#[sqlx::test]
async fn filtering_by_status_shows_only_the_licenses_in_that_status(pool: PgPool) {
    let w = World::seed(pool).await;
    let b = w.owner().await;
    assert_eq!(b.keys().await.len(), 4);

    b.find("#status")
        .await
        .select_by_value("inactive")
        .await
        .unwrap();
    b.click("#apply-filter").await;
    b.wait_for_path("the filtered page", |p| p.contains("status=inactive"))
        .await;
    b.find("tr[data-license]").await;
    assert_eq!(b.keys().await, ["yard-west"]);
    let selected = b.find("#status").await.prop("value").await.unwrap();
    assert_eq!(
        selected.as_deref(),
        Some("inactive"),
        "the filter stays chosen"
    );
    // The counts stay those of the whole tenant.
    assert_eq!(b.text("#count-total").await, "4");
    b.screenshot("monitoring-filtered").await;

    // The counts are filters too.
    b.click("#count-partially_active").await;
    b.wait_for_path("the partially active filter", |p| {
        p.contains("status=partially_active")
    })
    .await;
    b.find("tr[data-license]").await;
    assert_eq!(b.keys().await, ["dock-east"]);

    // Search by name, any status.
    b.find("#status").await.select_by_value("").await.unwrap();
    b.fill("#q", "north").await;
    b.click("#apply-filter").await;
    b.wait_for_path("the search", |p| p.contains("q=north"))
        .await;
    b.find("tr[data-license]").await;
    assert_eq!(b.keys().await, ["gate-north"]);
    b.close().await;
}

#[sqlx::test]
async fn a_click_on_a_status_symbol_opens_activity_status_with_the_licenses_cameras(pool: PgPool) {
    let w = World::seed(pool).await;
    let b = w.owner().await;
    b.click(r#"tr[data-license="dock-east"] a.symbol"#).await;
    let expected = format!("/licenses/{}", w.partial.id);
    b.wait_for_path("Activity Status", |p| p == expected).await;
    assert!(b.text("#license-status").await.contains("Partially Active"));
    assert!(!b.text("#reasons").await.is_empty(), "reasons are listed");
    let cameras = b
        .js(
            r#"return Array.from(document.querySelectorAll('#cameras tbody tr')).map(function (r) {
            return {id: r.querySelector("th").textContent.trim(), class: r.className,
                    url: r.querySelector("td.url").textContent.trim()};
        });"#,
        )
        .await
        .unwrap();
    assert_eq!(
        cameras,
        json!([
            {"id": "bay-3", "class": "cam-starving", "url": "rtsp://10.0.2.12/main"},
            {"id": "ramp", "class": "cam-active", "url": "rtsp://10.0.2.11/main"},
        ]),
        "camera rows"
    );
    assert!(b.has("#agents tbody tr").await);
    assert!(b.has("svg.chart").await, "the 24 h chart");
    b.screenshot("activity-status").await;

    // The inactive license, from its symbol too.
    b.goto("/").await;
    b.click(r#"tr[data-license="yard-west"] a.symbol"#).await;
    let expected = format!("/licenses/{}", w.inactive.id);
    b.wait_for_path("Activity Status", |p| p == expected).await;
    assert!(b.text("#license-status").await.contains("Inactive"));
    let ids = b
        .js(r#"return Array.from(document.querySelectorAll('#cameras tbody th')).map(function (t) { return t.textContent.trim(); });"#)
        .await
        .unwrap();
    assert_eq!(ids, json!(["fence", "gate"]));
    b.screenshot("activity-status-inactive").await;
    b.close().await;
}

#[sqlx::test]
async fn saving_notification_settings_below_one_hour_shows_the_error_next_to_the_field_and_changes_nothing(
    pool: PgPool,
) {
    let w = World::seed(pool).await;
    let before = w.settings(&w.all_active).await;
    let b = w.owner().await;
    // The check interval links to Setup Notification.
    b.click(r#"tr[data-license="gate-north"] a[title="Setup Notification"]"#)
        .await;
    let page = format!("/licenses/{}/notifications", w.all_active.id);
    b.wait_for_path("Setup Notification", |p| p == page).await;
    let intro = b.text("main").await;
    assert!(
        intro.contains("at least 1 hour"),
        "the minimum is explained"
    );

    b.set_checkbox("#enabled", true).await;
    b.fill("#inactivity_hours", "0.5").await;
    b.fill("#notification_hours", "8").await;
    b.fill("#recipients", "ops@acme.test").await;
    b.click("#save").await;

    let error = b.text("#inactivity_hours-error").await;
    assert!(error.contains("at least 1 hour"), "{error}");
    let next_to = b
        .js(r#"var f = document.getElementById("inactivity_hours");
               return [f.nextElementSibling && f.nextElementSibling.id, f.getAttribute("aria-invalid"),
                       f.getAttribute("aria-describedby"), f.value];"#)
        .await
        .unwrap();
    assert_eq!(
        next_to,
        json!([
            "inactivity_hours-error",
            "true",
            "inactivity_hours-error",
            "0.5"
        ]),
        "the error sits right after its field and the input is kept"
    );
    assert!(b.has("#form-error").await);
    assert!(!b.has("#saved").await);
    assert!(!b.has("#notification_hours-error").await);
    assert_eq!(
        b.js("return document.querySelectorAll('.field-error').length")
            .await
            .unwrap(),
        1
    );
    b.screenshot("setup-notification-error").await;

    assert_eq!(
        w.settings(&w.all_active).await,
        before,
        "something was saved"
    );
    b.close().await;
}

#[sqlx::test]
async fn saving_valid_notification_settings_persists_them(pool: PgPool) {
    let w = World::seed(pool).await;
    let b = w.owner().await;
    let page = format!("/licenses/{}/notifications", w.inactive.id);
    b.goto(&page).await;
    b.set_checkbox("#enabled", true).await;
    b.fill("#inactivity_hours", "2").await;
    b.fill("#notification_hours", "8").await;
    b.fill("#recipients", "ops@acme.test\nnight-shift@acme.test")
        .await;
    b.set_checkbox("#notify_on_recovery", false).await;
    b.click("#save").await;
    assert_eq!(b.text("#saved").await, "Saved.");
    assert!(!b.has(".field-error").await);

    assert_eq!(
        w.settings(&w.inactive).await,
        without_routing(json!({"enabled": true, "inactivity_interval_seconds": 7200,
               "notification_interval_seconds": 28800,
               "recipients": ["ops@acme.test", "night-shift@acme.test"],
               "notify_on_recovery": false}))
    );
    // The form shows what was saved.
    let shown = b
        .js(r#"return [document.getElementById("enabled").checked,
                       document.getElementById("inactivity_hours").value,
                       document.getElementById("notification_hours").value,
                       document.getElementById("recipients").value,
                       document.getElementById("notify_on_recovery").checked];"#)
        .await
        .unwrap();
    assert_eq!(
        shown,
        json!([
            true,
            "2",
            "8",
            "ops@acme.test\nnight-shift@acme.test",
            false
        ])
    );
    b.screenshot("setup-notification").await;
    b.close().await;
}

/// `[page not reloaded since the marker was set, class of the row of key]`.
async fn marker_and_class(b: &Browser, key: &str) -> Option<(bool, String)> {
    let script = format!(
        r#"var r = document.querySelector('tr[data-license="{key}"]');
           return [window.__marker === 1, r ? r.className : null];"#
    );
    let v = b.js(&script).await.ok()?;
    Some((v[0].as_bool()?, v[1].as_str()?.to_owned()))
}

#[sqlx::test]
async fn auto_refresh_picks_up_a_new_heartbeat_and_pause_stops_it(pool: PgPool) {
    let w = World::seed(pool).await;
    let b = w.owner().await;
    let toggle = b.find("#refresh-toggle").await;
    assert!(
        toggle.is_displayed().await.unwrap(),
        "the script shows the control"
    );
    assert_eq!(b.text("#refresh-toggle").await, "Pause auto-refresh");
    assert_eq!(marker_and_class(&b, "depot-south").await.unwrap().1, "none");

    // The first install of the not-installed site: the page must show it by itself.
    b.js("window.__marker = 1;").await.unwrap();
    w.app
        .push_ok(
            &w.not_installed.agent_token,
            &Batch::new(Uuid::new_v4())
                .seq(1)
                .camera("dock", camera("rtsp://10.0.4.11/main")),
        )
        .await;
    let (marker, class) = eventually(
        "the Monitoring page to show the new heartbeat",
        Duration::from_secs(25),
        || async {
            marker_and_class(&b, "depot-south")
                .await
                .filter(|(_, class)| class == "ok")
        },
    )
    .await;
    assert!(!marker, "the page changed without reloading?");
    assert_eq!(class, "ok");
    assert_eq!(b.text("#count-not_installed b").await, "0");

    // Paused: a change on the server stays off the page.
    b.click("#refresh-toggle").await;
    assert_eq!(b.text("#refresh-toggle").await, "Resume auto-refresh");
    assert_eq!(
        b.find("#refresh-toggle")
            .await
            .attr("aria-pressed")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    b.js("window.__marker = 1;").await.unwrap();
    w.app
        .push_ok(
            &w.inactive.agent_token,
            &Batch::new(Uuid::new_v4()).seq(2).cameras([
                ("fence", camera("rtsp://10.0.3.11/main")),
                ("gate", camera("rtsp://10.0.3.12/main")),
            ]),
        )
        .await;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(15) {
        let now = marker_and_class(&b, "yard-west").await;
        assert_eq!(
            now,
            Some((true, "bad".to_owned())),
            "the paused page reloaded or changed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.screenshot("monitoring-paused").await;

    // The change was there all along: a reload shows it, and the pause survives the reload.
    b.client.refresh().await.unwrap();
    eventually("the reloaded page", Duration::from_secs(10), || async {
        marker_and_class(&b, "yard-west")
            .await
            .filter(|(marker, _)| !marker)
    })
    .await;
    assert_eq!(marker_and_class(&b, "yard-west").await.unwrap().1, "ok");
    assert_eq!(b.text("#refresh-toggle").await, "Resume auto-refresh");

    // Resumed: it reloads by itself again.
    b.click("#refresh-toggle").await;
    assert_eq!(b.text("#refresh-toggle").await, "Pause auto-refresh");
    b.js("window.__marker = 1;").await.unwrap();
    eventually(
        "a reload after resuming",
        Duration::from_secs(25),
        || async {
            marker_and_class(&b, "yard-west")
                .await
                .filter(|(marker, _)| !marker)
        },
    )
    .await;
    b.close().await;
}

#[sqlx::test]
async fn a_viewer_sees_no_edit_controls(pool: PgPool) {
    let w = World::seed(pool).await;
    let b = w.browser().await;
    b.login(VIEWER, PASSWORD).await;
    assert_eq!(b.keys().await.len(), 4, "a viewer sees every license");
    assert!(!b.has("#new-license").await, "New license button");
    assert!(!b.has(r#"nav a[href="/api-keys"]"#).await, "API keys menu");
    b.screenshot("viewer-monitoring").await;

    b.goto(&format!("/licenses/{}", w.partial.id)).await;
    b.find("#cameras").await;
    for control in [
        "#create-token",
        "#edit-license",
        "#tokens",
        "form[action$='/revoke']",
    ] {
        assert!(!b.has(control).await, "{control} on Activity Status");
    }
    b.screenshot("viewer-activity-status").await;

    b.goto(&format!("/licenses/{}/notifications", w.partial.id))
        .await;
    b.find("#inactivity_hours").await;
    assert!(!b.has("#save").await, "Save on Setup Notification");
    assert!(
        b.text("main")
            .await
            .contains("can view these settings but not change them")
    );
    b.screenshot("viewer-setup-notification").await;

    b.goto("/users").await;
    b.find("#users").await;
    for control in [
        "#add-user",
        "form[action$='/role']",
        "form[action$='/delete']",
    ] {
        assert!(!b.has(control).await, "{control} on Users");
    }

    b.goto(&format!("/licenses/{}/edit", w.partial.id)).await;
    assert_eq!(b.text("h1").await, "Not allowed");
    assert!(!b.has("#save-license").await);
    b.goto("/licenses/new").await;
    assert_eq!(b.text("h1").await, "Not allowed");
    b.goto("/api-keys").await;
    assert_eq!(b.text("h1").await, "Not allowed");
    assert!(!b.has("#create-key").await);
    b.close().await;
}

#[sqlx::test]
async fn an_owner_creates_a_license_and_its_agent_token_through_the_administration_pages(
    pool: PgPool,
) {
    let w = World::seed(pool).await;
    let b = w.owner().await;

    b.click(r#"nav a[href="/users"]"#).await;
    b.wait_for_path("Users", |p| p == "/users").await;
    let users = b.text("#users").await;
    assert!(
        users.contains(&w.tenant.owner_email) && users.contains(VIEWER),
        "{users}"
    );
    assert!(b.has("#add-user").await);
    b.screenshot("users").await;

    b.click(r#"nav a[href="/api-keys"]"#).await;
    b.wait_for_path("API keys", |p| p == "/api-keys").await;
    b.find("#create-key").await;
    b.screenshot("api-keys").await;

    b.click(r#"nav a[href="/"]"#).await;
    b.click("#new-license").await;
    b.wait_for_path("the new license form", |p| p == "/licenses/new")
        .await;
    b.fill("#key", "pier-9").await;
    b.fill("#name", "Pier 9").await;
    b.fill("#check_minutes", "5").await;
    b.screenshot("new-license").await;
    b.click("#save-license").await;
    b.wait_for_path("the new license's Activity Status", |p| {
        p.starts_with("/licenses/") && p != "/licenses/new"
    })
    .await;
    assert!(b.text("h1").await.contains("Pier 9"));
    assert!(b.text("#license-status").await.contains("Not Installed"));

    b.fill("#token-name", "pier box").await;
    b.click("#create-token").await;
    let token = b
        .find("#token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(token.len() >= 32, "{token}");
    let snippet = b
        .find("#snippet")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        snippet.contains(&token),
        "the snippet carries the token: {snippet}"
    );
    assert!(snippet.contains("pier-9"), "{snippet}");
    b.screenshot("token-created").await;

    // The token works, and Monitoring shows the new license.
    w.app
        .push_ok(
            &token,
            &Batch::new(Uuid::new_v4())
                .seq(1)
                .camera("pier", camera("rtsp://10.0.9.11/main")),
        )
        .await;
    b.goto("/").await;
    assert_eq!(b.text("#count-total").await, "5");
    let row = b
        .rows()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "pier-9")
        .expect("the new license is listed");
    assert_eq!(row.class, "ok");
    b.close().await;
}

#[sqlx::test]
async fn an_owner_creates_a_maintenance_window_covering_now_and_monitoring_marks_every_license_quiet(
    pool: PgPool,
) {
    let w = World::seed(pool).await;
    let b = w.owner().await;
    assert_eq!(b.text("#count-quiet b").await, "0");

    b.click(r#"nav a[href="/maintenance-windows"]"#).await;
    b.wait_for_path("Maintenance windows", |p| p == "/maintenance-windows")
        .await;
    b.fill("#w-name", "Network swap").await;
    b.click("#scope-all").await;
    b.click("#kind-one-off").await;
    // From five minutes ago for an hour, typed in the tenant's zone (Europe/Berlin). A
    // `datetime-local` input takes typed keys in the browser's locale, so its value is set.
    let typed = |t: chrono::DateTime<Utc>| {
        t.with_timezone(&chrono_tz::Europe::Berlin)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let now = Utc::now();
    b.js(&format!(
        r#"document.getElementById("w-starts-at").value = "{}";
           document.getElementById("w-ends-at").value = "{}";"#,
        typed(now - Age::minutes(5)),
        typed(now + Age::hours(1))
    ))
    .await
    .unwrap();

    // The preview lists the one occurrence and saves nothing.
    b.click("#preview-window").await;
    let preview = b.text("#preview").await;
    assert!(preview.contains("Europe/Berlin"), "{preview}");
    assert_eq!(w.app.count("maintenance_windows").await, 0);
    b.js(r#"document.getElementById("preview").scrollIntoView();"#)
        .await
        .unwrap();
    b.screenshot("maintenance-preview").await;

    b.click("#create-window").await;
    let listed = eventually("the new window in the list", Duration::from_secs(10), || async {
        let rows = b.js(r#"return Array.from(document.querySelectorAll("tr[data-window]")).map(function (r) { return r.textContent; });"#)
            .await
            .ok()?;
        rows.as_array()?.first()?.as_str().map(str::to_owned)
    })
    .await;
    assert!(
        listed.contains("Network swap") && listed.contains("in force now"),
        "{listed}"
    );
    b.screenshot("maintenance-windows").await;

    b.click(r#"nav a[href="/"]"#).await;
    b.wait_for_path("Monitoring", |p| p == "/").await;
    assert_eq!(b.text("#count-quiet b").await, "4");
    let badges = b
        .js(
            r#"return Array.from(document.querySelectorAll("tr[data-license]")).map(function (r) {
                 var q = r.querySelector(".badge.quiet");
                 return [r.getAttribute("data-license"), q ? q.textContent.trim() : ""];
               });"#,
        )
        .await
        .unwrap();
    let badges: Vec<(String, String)> = serde_json::from_value(badges).unwrap();
    assert_eq!(badges.len(), 4, "{badges:?}");
    for (key, badge) in &badges {
        assert!(
            badge.starts_with("quiet: maintenance until"),
            "{key}: {badge:?}"
        );
    }
    // Status is unchanged: the inactive site is still inactive.
    let rows = b.rows().await.unwrap();
    let inactive = rows.iter().find(|r| r.key == "yard-west").unwrap();
    assert_eq!(inactive.class, "bad");
    b.screenshot("monitoring-quiet").await;
    b.close().await;
}

#[sqlx::test]
async fn an_owner_creates_tests_edits_and_deletes_an_email_channel_on_the_channels_page(
    pool: PgPool,
) {
    let smtp = crate::smtp::SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(pool, |s| s.smtp.url = Some(url.into())).await;
    let tenant = app.create_tenant("acme").await;
    let b = Browser::start(&app.address).await;
    b.login(&tenant.owner_email, PASSWORD).await;

    b.click(r#"nav a[href="/channels"]"#).await;
    b.wait_for_path("Channels", |p| p == "/channels").await;
    b.js(r#"document.getElementById("c-kind").value = "email";"#)
        .await
        .unwrap();
    b.click("#new-channel-button").await;
    b.wait_for_path("the e-mail channel form", |p| {
        p.starts_with("/channels/new")
    })
    .await;
    // A bad address is named next to the field, and nothing is saved.
    b.fill("#c-name", "On call").await;
    b.fill("#c-recipients", "oncall@acme.test, nope").await;
    b.click("#save-channel").await;
    let message = b.text(".field-error").await;
    assert!(message.contains("nope"), "{message}");
    assert_eq!(app.count("channels").await, 0);
    b.fill("#c-recipients", "oncall@acme.test").await;
    b.click("#save-channel").await;
    b.wait_for_path("Channels", |p| p == "/channels").await;
    let row = b.text("tr[data-channel]").await;
    assert!(
        row.contains("On call") && row.contains("oncall@acme.test"),
        "{row}"
    );

    b.click(".test-channel").await;
    let outcome = eventually("the test outcome", Duration::from_secs(10), || async {
        b.js(r#"var o = document.getElementById("test-outcome"); return o ? o.textContent : null;"#)
            .await
            .ok()?
            .as_str()
            .map(str::to_owned)
    })
    .await;
    assert!(outcome.contains("delivered"), "{outcome}");
    assert_eq!(smtp.messages().len(), 1);
    b.screenshot("channels-test-sent").await;

    b.click(".edit-channel").await;
    b.wait_for_path("the edit form", |p| p.ends_with("/edit"))
        .await;
    b.fill("#c-name", "On call (night)").await;
    b.click("#save-channel").await;
    b.wait_for_path("Channels", |p| p == "/channels").await;
    assert!(b.text("tr[data-channel]").await.contains("On call (night)"));

    b.click(".delete-channel").await;
    assert!(b.text("#confirm-delete").await.contains("On call (night)"));
    b.screenshot("channels-confirm-delete").await;
    b.click("#confirm-delete-button").await;
    let empty = eventually("the empty list", Duration::from_secs(10), || async {
        let t = b.text("#channels tbody").await;
        t.contains("No channels yet.").then_some(t)
    })
    .await;
    assert!(empty.contains("No channels yet."));
    assert_eq!(app.count("channels").await, 0);
    b.close().await;
}
