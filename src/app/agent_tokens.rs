//! What an operator pastes on a site after creating an agent token: shown by the JSON API and
//! the web UI from this one function.

use crate::store::licenses::LicenseRow;

/// The agent configuration to paste on the site (docs/AGENT.md describes every field).
pub fn config_snippet(public_url: &str, license: &LicenseRow, token: &str) -> String {
    format!(
        r#"# streamwatch-agent configuration for license {key} ({name})
[central]
url = "{public_url}"
token = "{token}"

[agent]
state_dir = "/var/lib/streamwatch-agent"
listen = "0.0.0.0:8001"

# One [[camera]] table per camera.
[[camera]]
id = "camera-1"
url = "rtsp://10.0.0.5/stream1"
# expected_fps = 25
# timezone = "UTC"
"#,
        key = license.key,
        // The name is free text; keep the comment on one line.
        name = license.name.replace(['\n', '\r'], " "),
    )
}
