//! Camera snapshots (SPEC section 7): the checked JPEG an agent uploads, and which stored
//! snapshot a reader asks for. Pure: the store keeps the bytes, `app::snapshots` decides what
//! to write.

use sha2::{Digest, Sha256};

/// The largest snapshot an agent may upload (SPEC section 7): 256 KiB.
pub use streamwatch_protocol::picture::MAX_SNAPSHOT_BYTES;

/// A JPEG file whose structure was checked: it starts with SOI, its segments up to the first
/// frame header are well formed, the frame has a non-zero size, and it ends with EOI. The
/// entropy-coded data is not decoded: the point is to refuse what is not a JPEG at all (an
/// HTML error page, a PNG, a truncated upload) before it is stored and served as
/// `image/jpeg`, not to validate every pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jpeg {
    bytes: Vec<u8>,
    width: u16,
    height: u16,
}

impl Jpeg {
    /// Checks `bytes` (at most [`MAX_SNAPSHOT_BYTES`]); the error says what is wrong.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(format!(
                "a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes, not {}",
                bytes.len()
            ));
        }
        if !bytes.starts_with(&[0xFF, 0xD8]) {
            return Err("not a JPEG: it does not start with the SOI marker (FF D8)".to_owned());
        }
        if !bytes.ends_with(&[0xFF, 0xD9]) {
            return Err(
                "not a complete JPEG: it does not end with the EOI marker (FF D9)".to_owned(),
            );
        }
        let (width, height) = frame_size(&bytes)?;
        Ok(Self {
            bytes,
            width,
            height,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The SHA-256 of the bytes (the stored snapshot's identity and ETag).
    pub fn sha256(&self) -> Vec<u8> {
        Sha256::digest(&self.bytes).to_vec()
    }
}

/// Walks the marker segments after SOI to the first SOFn and reads the frame's size.
fn frame_size(bytes: &[u8]) -> Result<(u16, u16), String> {
    let truncated = || "not a JPEG: a marker segment runs past the end".to_owned();
    let mut at = 2;
    loop {
        // Markers may be padded with any number of 0xFF fill bytes.
        if bytes.get(at) != Some(&0xFF) {
            return Err(format!("not a JPEG: no marker at byte {at}"));
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or_else(truncated)?;
        at += 1;
        match marker {
            // TEM and RSTn stand alone; none belongs before the frame header, but they carry
            // no length, so step over them.
            0x01 | 0xD0..=0xD7 => continue,
            // SOI, EOI, SOS.
            0xD8..=0xDA => {
                return Err(format!(
                    "not a JPEG: marker FF {marker:02X} before any frame header (SOF)"
                ));
            }
            _ => {}
        }
        let len = bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(truncated)?;
        if len < 2 || at + len > bytes.len() {
            return Err(truncated());
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            // Length, precision, height, width.
            let segment = &bytes[at..at + len];
            if segment.len() < 7 {
                return Err(truncated());
            }
            let height = u16::from_be_bytes([segment[3], segment[4]]);
            let width = u16::from_be_bytes([segment[5], segment[6]]);
            if width == 0 || height == 0 {
                return Err(format!(
                    "not a usable JPEG: the frame is {width}x{height} px"
                ));
            }
            return Ok((width, height));
        }
        at += len;
    }
}

/// Which stored snapshot of a camera (`?kind=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// The newest upload.
    Latest,
    /// The first upload of the current or last bad-picture episode.
    Bad,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Bad => "bad",
        }
    }

    pub fn parse(input: &str) -> Result<Self, String> {
        match input {
            "latest" => Ok(Self::Latest),
            "bad" => Ok(Self::Bad),
            _ => Err(format!("must be 'latest' or 'bad', not '{input}'")),
        }
    }
}

/// Whether an upload in picture state `state` begins a bad-picture episode, given the state
/// stored with the camera's previous upload: the first upload of a `black`, `uniform` or
/// `frozen` picture after any other state (or none) is the one kept as the `bad` snapshot.
/// A change from one bad state to another (`frozen` to `black`) begins a new episode too.
pub fn begins_bad_episode(
    state: Option<streamwatch_protocol::PictureState>,
    previous: Option<streamwatch_protocol::PictureState>,
) -> bool {
    match state {
        Some(s) if s.is_bad() => previous != Some(s),
        _ => false,
    }
}

/// The ETag of a snapshot with this SHA-256 (strong: the bytes are the identity).
pub fn etag(sha256: &[u8]) -> String {
    format!("\"{}\"", hex::encode(sha256))
}

/// Whether an `If-None-Match` header value matches `etag` (RFC 9110: `*`, or any listed tag
/// compared weakly).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = strip(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || strip(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamwatch_protocol::PictureState::{Black, Frozen, Ok as Fine, Unknown};

    /// A minimal baseline JPEG header: SOI, APP0 (JFIF), SOF0 of `w`x`h`, then EOI (the
    /// checker does not read the scan).
    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        b.extend_from_slice(&[
            0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        ]);
        b.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8]);
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&[1, 1, 0x11, 0]);
        b.extend_from_slice(&[0xFF, 0xD9]);
        b
    }

    #[test]
    fn a_jpeg_header_gives_its_size() {
        let j = Jpeg::parse(jpeg(640, 360)).unwrap();
        assert_eq!((j.width(), j.height()), (640, 360));
        assert_eq!(j.sha256().len(), 32);
    }

    #[test]
    fn what_is_not_a_jpeg_is_refused_with_a_reason() {
        let mut no_eoi = jpeg(4, 4);
        no_eoi.truncate(no_eoi.len() - 2);
        let mut zero = jpeg(0, 4);
        zero.truncate(zero.len());
        let cases: [(&str, Vec<u8>, &str); 6] = [
            ("empty", Vec::new(), "SOI"),
            ("png", b"\x89PNG\r\n\x1a\n....\xFF\xD9".to_vec(), "SOI"),
            ("truncated", no_eoi, "EOI"),
            ("zero-sized frame", zero, "0x4"),
            (
                "no frame header",
                vec![0xFF, 0xD8, 0xFF, 0xD9],
                "before any frame",
            ),
            (
                "a segment past the end",
                vec![0xFF, 0xD8, 0xFF, 0xE0, 0x7F, 0xFF, 0xFF, 0xD9],
                "past the end",
            ),
        ];
        for (name, bytes, expected) in cases {
            let err = Jpeg::parse(bytes).unwrap_err();
            assert!(err.contains(expected), "{name}: {err}");
        }
        let big = vec![0u8; MAX_SNAPSHOT_BYTES + 1];
        assert!(Jpeg::parse(big).unwrap_err().contains("at most"));
    }

    #[test]
    fn the_first_bad_upload_of_an_episode_is_kept() {
        assert!(begins_bad_episode(Some(Frozen), Some(Fine)));
        assert!(begins_bad_episode(Some(Frozen), None));
        assert!(begins_bad_episode(Some(Black), Some(Frozen)));
        assert!(!begins_bad_episode(Some(Frozen), Some(Frozen)));
        assert!(!begins_bad_episode(Some(Fine), Some(Frozen)));
        assert!(!begins_bad_episode(Some(Unknown), None));
        assert!(!begins_bad_episode(None, Some(Fine)));
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_stars() {
        let tag = etag(&[0xAB, 0xCD]);
        assert_eq!(tag, "\"abcd\"");
        assert!(if_none_match("\"abcd\"", &tag));
        assert!(if_none_match("W/\"abcd\"", &tag));
        assert!(if_none_match("\"x\", \"abcd\"", &tag));
        assert!(if_none_match("*", &tag));
        assert!(!if_none_match("\"abce\"", &tag));
    }

    #[test]
    fn kinds_parse_their_spelling() {
        for kind in [SnapshotKind::Latest, SnapshotKind::Bad] {
            assert_eq!(SnapshotKind::parse(kind.as_str()), Ok(kind));
        }
        assert!(SnapshotKind::parse("worst").is_err());
    }
}
