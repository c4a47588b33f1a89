//! Showing URLs without their secrets (SPEC sections 3 and 6: credentials in URLs are never
//! stored or shown; URLs in errors and logs are shown without credentials or query).
//!
//! Three forms, all idempotent (redacting a redacted text changes nothing):
//!
//! | function | for | `scheme://user:pw@host:1/a/b?k=v#f` becomes |
//! |---|---|---|
//! | [`redact_url`] | camera URLs | `scheme://host:1/a/b?[redacted]#[redacted]` |
//! | [`redact_url_origin`] | webhook and notification targets, whose path is often the secret (Slack, Teams, ntfy) | `scheme://host:1/[redacted]` |
//! | [`redact_urls_in_text`] | error texts that quote URLs | every URL inside in the [`redact_url`] form |
//!
//! The query and fragment are replaced by a marker rather than dropped, so that an operator
//! still sees that the URL had one. The userinfo goes without a marker, as before.
//!
//! These are hand-written scanners, not a URL parser: the protocol crate stays serde-only, and
//! a redactor has to cope with text that no parser accepts. Text that does not start with a
//! `scheme://` is **not** passed through: everything up to the last `@` before the first `?` or
//! `#` is dropped (it may be `user:password@`), and the query and fragment are replaced as for a
//! URL. So `admin:pw@10.0.0.5/s1?token=x` is shown as `10.0.0.5/s1?[redacted]`.
//!
//! A raw `/`, `?` or `#` inside a password is not valid URL syntax (RFC 3986 requires them
//! percent-encoded) and ends the authority, as it does for every URL parser; such a password
//! can leak through [`redact_url`]. The agent's configuration check accepts only URLs that
//! parse, so its own URLs do not have that problem.

/// What replaces a redacted query, fragment or path.
pub const REDACTED: &str = "[redacted]";

/// A URL as it may be shown: without userinfo, its query and fragment replaced by
/// `?[redacted]` and `#[redacted]`; scheme, host, port and path kept. For camera URLs, whose
/// path says which stream it is. See the [module documentation](self) for text that is not a
/// URL.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    match split_scheme(url) {
        Some((prefix, rest)) => {
            out.push_str(prefix);
            let (authority, after) = split_authority(rest);
            out.push_str(without_userinfo(authority));
            push_path_and_markers(&mut out, after);
        }
        None => {
            let head_len = url.find(['?', '#']).unwrap_or(url.len());
            let head = &url[..head_len];
            out.push_str(head.rfind('@').map_or(head, |at| &head[at + 1..]));
            push_markers(&mut out, &url[head_len..]);
        }
    }
    out
}

/// The strict form, for URLs whose path may itself be the secret (webhook and notification
/// targets such as Slack, Teams or ntfy URLs): `scheme://host:port`, followed by
/// `/[redacted]` when anything came after it. Text that is not a URL keeps only what may be
/// its host: `user:pw@hooks.example.com/T0/B0/XXX` becomes `hooks.example.com/[redacted]`.
pub fn redact_url_origin(url: &str) -> String {
    let (prefix, rest) = split_scheme(url).unwrap_or(("", url));
    // Without a scheme the userinfo may hold a raw '/', so look for it up to '?' or '#'.
    let (authority, after) = if prefix.is_empty() {
        let head_len = rest.find(['?', '#']).unwrap_or(rest.len());
        let host_start = rest[..head_len].rfind('@').map_or(0, |at| at + 1);
        split_authority(&rest[host_start..])
    } else {
        split_authority(rest)
    };
    let mut out = format!("{prefix}{}", without_userinfo(authority));
    if !after.is_empty() && after != "/" {
        out.push('/');
        out.push_str(REDACTED);
    } else {
        out.push_str(after);
    }
    out
}

/// Applies [`redact_url`] to every URL inside a free text, such as an HTTP or RTSP client's
/// error message that quotes the URL it tried. A URL is any `://` with the scheme characters
/// before it, up to white space, a control character or one of `"`, `<`, `>` and `` ` `` (none
/// of which may appear raw in a URL). A `)` that closes a `(` just before the URL stays outside
/// it when only punctuation follows. Text without `://` comes back unchanged.
pub fn redact_urls_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .rfind(|c: char| !is_scheme_char(c))
            .map_or(0, |i| i + 1);
        // A scheme starts with a letter: "1http://" is "1" then "http://".
        let scheme_start = rest[scheme_start..pos]
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(pos, |i| scheme_start + i);
        let end = rest[pos..]
            .find(|c: char| {
                c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`')
            })
            .map_or(rest.len(), |i| pos + i);
        // "(http://h/x?k=v): ..." ends the URL at the ')' that closes the '(', when only
        // punctuation follows it (so that a ')' inside a query value cannot end it early).
        let url_end = match rest[pos..end].rfind(')') {
            Some(i)
                if rest[..scheme_start].ends_with('(')
                    && rest[pos + i + 1..end]
                        .chars()
                        .all(|c| matches!(c, ':' | ',' | '.' | ';' | '!')) =>
            {
                pos + i
            }
            _ => end,
        };
        out.push_str(&rest[..scheme_start]);
        let (scheme, after_scheme) = rest[scheme_start..url_end].split_at(pos - scheme_start + 3);
        out.push_str(scheme);
        let (authority, after) = split_authority(after_scheme);
        out.push_str(without_userinfo(authority));
        push_path_and_markers(&mut out, after);
        rest = &rest[url_end..];
    }
    out.push_str(rest);
    out
}

/// How to quote a URL that did not parse, in an error message: its scheme and nothing else
/// (`https://[redacted]`, or `[redacted]` without a scheme). A URL that does not parse has no
/// reliable userinfo or host: a password whose `@` was lost reads as a host and port, so any
/// part of it may be a secret.
pub fn redact_unparseable_url(url: &str) -> String {
    match split_scheme(url) {
        Some((prefix, _)) => format!("{prefix}{REDACTED}"),
        None => REDACTED.to_owned(),
    }
}

/// `("scheme://", rest)` when `url` starts with an RFC 3986 scheme and `://`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| is_scheme_char(char::from(b)));
    valid.then(|| url.split_at(scheme_end + 3))
}

/// RFC 3986: `ALPHA / DIGIT / "+" / "-" / "."`.
fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// The authority (up to the first `/`, `?` or `#`) and what follows it.
fn split_authority(rest: &str) -> (&str, &str) {
    rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()))
}

/// The authority after its last `@`, which also covers passwords with a raw `:` or `@`.
fn without_userinfo(authority: &str) -> &str {
    let host = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    if is_host_and_port(host) {
        host
    } else {
        // Not `host[:port]`: most likely userinfo whose '@' was lost ("user:secret"), which
        // would otherwise be shown as a host and port.
        REDACTED
    }
}

/// `host`, `host:digits`, `[v6]` or `[v6]:digits` (an empty port included, as URLs allow).
fn is_host_and_port(host: &str) -> bool {
    let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(bracketed) = host.strip_prefix('[') {
        return match bracketed.split_once(']') {
            Some((_, "")) => true,
            Some((_, rest)) => rest.strip_prefix(':').is_some_and(port_ok),
            None => false,
        };
    }
    match host.split_once(':') {
        None => true,
        Some((_, port)) => port_ok(port),
    }
}

/// Keeps the path of `after` (what follows the authority) and replaces its query and fragment.
fn push_path_and_markers(out: &mut String, after: &str) {
    let path_len = after.find(['?', '#']).unwrap_or(after.len());
    out.push_str(&after[..path_len]);
    push_markers(out, &after[path_len..]);
}

/// `tail` starts with `?` or `#`, or is empty.
fn push_markers(out: &mut String, tail: &str) {
    if tail.starts_with('?') {
        out.push('?');
        out.push_str(REDACTED);
    }
    if tail.contains('#') {
        out.push('#');
        out.push_str(REDACTED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn userinfo_without_its_at_sign_is_not_shown_as_host_and_port() {
        assert_eq!(redact_url("rtsp://admin:secret/s1"), "rtsp://[redacted]/s1");
        assert_eq!(
            redact_url_origin("https://u:secret/hooks/x"),
            "https://[redacted]/[redacted]"
        );
        assert_eq!(
            redact_urls_in_text("GET https://u:secret/x failed"),
            "GET https://[redacted]/x failed"
        );
        // Real ports and IPv6 hosts stay.
        assert_eq!(redact_url("rtsp://10.0.0.5:554/s"), "rtsp://10.0.0.5:554/s");
        assert_eq!(redact_url("rtsp://[::1]:554/s"), "rtsp://[::1]:554/s");
        assert_eq!(redact_url("http://h:/s"), "http://h:/s");
    }

    #[test]
    fn an_unparseable_url_is_quoted_by_its_scheme_only() {
        // The '@' of "u:secret@host" lost: "u" reads as the host and "secret" as its port.
        assert_eq!(
            redact_unparseable_url("https://u:secret/hooks/x?t=1"),
            "https://[redacted]"
        );
        assert_eq!(redact_unparseable_url("u:secret@host/x"), "[redacted]");
    }

    #[test]
    fn camera_urls_lose_userinfo_query_and_fragment() {
        let cases = [
            (
                "rtsp://user:pass@10.0.0.5:554/stream1?x=1",
                "rtsp://10.0.0.5:554/stream1?[redacted]",
                "user, password and query",
            ),
            (
                "rtsp://admin@10.0.0.5/stream1",
                "rtsp://10.0.0.5/stream1",
                "user only",
            ),
            (
                "rtsp://user:pa:ss:word@host/s",
                "rtsp://host/s",
                "colons in the password",
            ),
            (
                "rtsp://user:p@ss@host/s",
                "rtsp://host/s",
                "a raw @ in the password",
            ),
            (
                "rtsp://user:p%40ss@host/s",
                "rtsp://host/s",
                "a percent-encoded @ in the password",
            ),
            ("rtsp://:secret@host", "rtsp://host", "empty user, no path"),
            ("rtsp://@host/s", "rtsp://host/s", "empty userinfo"),
            (
                "rtsps://u:p@[fe80::1]:322/s",
                "rtsps://[fe80::1]:322/s",
                "an IPv6 host",
            ),
            (
                "stream-status+http://u:p@host:8001/status/#cam-2",
                "stream-status+http://host:8001/status/#[redacted]",
                "a compound scheme with a fragment",
            ),
            (
                "rtsp://u:p@host?user=a@b",
                "rtsp://host?[redacted]",
                "a query after a bare host",
            ),
            (
                "rtsp://u:p@host#a@b",
                "rtsp://host#[redacted]",
                "a fragment after a bare host",
            ),
            (
                "rtsp://h/s?token=x#frag",
                "rtsp://h/s?[redacted]#[redacted]",
                "query and fragment",
            ),
            (
                "rtsp://h/s?",
                "rtsp://h/s?[redacted]",
                "an empty query still shows",
            ),
            (
                "rtsp://10.0.0.5/stream1",
                "rtsp://10.0.0.5/stream1",
                "nothing to redact",
            ),
            ("rtsp://host/a@b", "rtsp://host/a@b", "an @ in the path"),
            (
                "file:///var/video/a@b.mp4",
                "file:///var/video/a@b.mp4",
                "a file URL with an @ in the path",
            ),
            (
                "simulated://?fps=25&faults=a@b",
                "simulated://?[redacted]",
                "an empty authority",
            ),
            (
                "user:pass@host/stream?token=x",
                "host/stream?[redacted]",
                "no scheme: the userinfo and query still go",
            ),
            (
                "user:pa/ss@host/stream",
                "host/stream",
                "no scheme: a raw / in the password",
            ),
            (
                "/local?next=http://u:p@x/",
                "/local?[redacted]",
                "a :// that is not after a scheme",
            ),
            (
                " rtsp://u:p@h/s",
                "h/s",
                "leading space: not a URL, still stripped",
            ),
            ("", "", "empty"),
        ];
        for (input, expected, what) in cases {
            assert_eq!(redact_url(input), expected, "{what}: {input}");
        }
    }

    #[test]
    fn webhook_targets_show_only_their_origin() {
        let cases = [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
                "https://hooks.slack.com/[redacted]",
                "a secret path",
            ),
            (
                "https://u:p@ntfy.example:8443/topic-secret?auth=tok#x",
                "https://ntfy.example:8443/[redacted]",
                "userinfo, port, path, query and fragment",
            ),
            (
                "https://h?token=x",
                "https://h/[redacted]",
                "a query without a path",
            ),
            ("https://h/", "https://h/", "an empty path"),
            ("https://h", "https://h", "no path"),
            (
                "u:p/w@hooks.example.com/T0/B0?x",
                "hooks.example.com/[redacted]",
                "not a URL",
            ),
            ("", "", "empty"),
        ];
        for (input, expected, what) in cases {
            assert_eq!(redact_url_origin(input), expected, "{what}: {input}");
        }
    }

    #[test]
    fn urls_inside_error_texts_are_redacted() {
        let cases = [
            (
                "DESCRIBE rtsp://admin:s3cret@10.0.0.5:554/x?token=t failed: 401",
                "DESCRIBE rtsp://10.0.0.5:554/x?[redacted] failed: 401",
            ),
            (
                "two rtsp://a:b@h/1 and rtsp://h2/2#f",
                "two rtsp://h/1 and rtsp://h2/2#[redacted]",
            ),
            (
                "error sending request for url (http://u:p@h:1/hook?k=v): connection refused",
                "error sending request for url (http://h:1/hook?[redacted]): connection refused",
            ),
            (
                "bad url \"https://u:p@h/x?y\": no",
                "bad url \"https://h/x?[redacted]\": no",
            ),
            (
                "see http://h/?next=http://u:p@x/?t=1 now",
                "see http://h/?[redacted] now",
            ),
            ("1http://u:p@h/", "1http://h/"),
            ("://u:p@h/?q", "://h/?[redacted]"),
            (
                "no url here, user@example.com?x",
                "no url here, user@example.com?x",
            ),
            ("rtsp://host/a@b", "rtsp://host/a@b"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_urls_in_text(input), expected, "{input}");
        }
    }

    /// Secrets are the only upper-case letters in the generated URLs, so "no secret survives"
    /// is "no upper-case letter survives" (the markers are lower case).
    fn secret() -> impl Strategy<Value = String> {
        "[A-Z]{1,12}"
    }

    /// Characters RFC 3986 allows raw in a password, besides letters and digits; plus `@`,
    /// which a redactor must cope with too.
    fn password() -> impl Strategy<Value = String> {
        (
            "[a-z0-9._~!$&'()*+,;=:@%-]{0,4}",
            secret(),
            "[a-z0-9._~!$&'()*+,;=:@%-]{0,4}",
        )
            .prop_map(|(a, s, b)| format!("{a}{s}{b}"))
    }

    /// `scheme://[user[:password]@]host[:port][/path][?query][#fragment]`, the secrets in
    /// userinfo, query values and fragment; and whether the path holds a secret too.
    fn url() -> impl Strategy<Value = (String, bool)> {
        (
            prop::option::of("[a-z][a-z0-9+.-]{0,8}"),
            prop::option::of((prop::option::of(secret()), prop::option::of(password()))),
            "[a-z0-9.-]{0,12}|\\[[a-f0-9:]{2,10}\\]",
            prop::option::of(any::<u16>()),
            prop::option::of(("(/[a-z0-9@._-]{0,6}){1,3}", prop::option::of(secret()))),
            prop::option::of(prop::collection::vec(("[a-z_]{0,5}", secret()), 0..3)),
            prop::option::of(secret()),
        )
            .prop_map(|(scheme, userinfo, host, port, path, query, fragment)| {
                let mut url = scheme.map(|s| format!("{s}://")).unwrap_or_default();
                if let Some((user, password)) = userinfo {
                    url.push_str(&user.unwrap_or_default());
                    if let Some(p) = password {
                        url.push(':');
                        url.push_str(&p);
                    }
                    url.push('@');
                }
                url.push_str(&host);
                if let Some(port) = port {
                    url.push_str(&format!(":{port}"));
                }
                let mut secret_path = false;
                if let Some((path, s)) = path {
                    url.push_str(&path);
                    if let Some(s) = s {
                        url.push('/');
                        url.push_str(&s);
                        secret_path = true;
                    }
                }
                if let Some(pairs) = query {
                    let pairs: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    url.push('?');
                    url.push_str(&pairs.join("&"));
                }
                if let Some(f) = fragment {
                    url.push('#');
                    url.push_str(&f);
                }
                (url, secret_path)
            })
    }

    fn has_secret(text: &str) -> bool {
        text.chars().any(|c| c.is_ascii_uppercase())
    }

    proptest! {
        #[test]
        fn no_secret_survives_a_camera_url((url, secret_path) in url()) {
            let shown = redact_url(&url);
            if !secret_path {
                prop_assert!(!has_secret(&shown), "{url} -> {shown}");
            }
            prop_assert_eq!(redact_url(&shown), shown.as_str(), "idempotent");
        }

        #[test]
        fn no_secret_survives_the_origin_form((url, _) in url()) {
            let shown = redact_url_origin(&url);
            prop_assert!(!has_secret(&shown), "{url} -> {shown}");
            prop_assert_eq!(redact_url_origin(&shown), shown.as_str(), "idempotent");
        }

        #[test]
        fn no_secret_survives_in_a_text(
            (url, secret_path) in url(),
            before in "[a-z0-9 :(,]{0,12}",
            after in "[a-z0-9 :),.]{0,12}",
        ) {
            // In a text, a URL starts at its scheme: one without a scheme is not recognised.
            prop_assume!(url.contains("://") && !secret_path);
            let text = format!("{before}{url}{after}");
            let shown = redact_urls_in_text(&text);
            prop_assert!(!has_secret(&shown), "{text} -> {shown}");
            prop_assert_eq!(redact_urls_in_text(&shown), shown.as_str(), "idempotent");
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = redact_url(&text);
            let _ = redact_url_origin(&text);
            let shown = redact_urls_in_text(&text);
            prop_assert_eq!(redact_urls_in_text(&shown), shown);
        }
    }
}
