//! Catching one keyframe in a camera's RTP packets, for the snapshot decoder.
//!
//! The RTSP source reads packets, not frames (its measurements need per-packet counts and
//! arrival times, see [`super::rtsp`]), and retina's depacketizer only runs inside its own
//! frame stream. So while a picture is wanted, the packets also go through this small
//! depacketizer, which rebuilds access units (RFC 6184 for H.264, RFC 7798 for H.265: single
//! NAL unit packets, aggregation packets and fragmentation units) and returns the first
//! complete one that holds a keyframe (an H.264 IDR, an H.265 IRAP picture), as Annex B with
//! the stream's parameter sets in front. The rest of the time it is idle and holds nothing.
//!
//! An access unit is the run of packets with one RTP timestamp, closed by the marker bit or by
//! the next timestamp. One with a lost packet (retina's `loss()`), a fragment without its
//! start, or a packetization this code does not read (H.264 interleaved mode, H.265 PACI) is
//! dropped, and the next keyframe is tried: a decoder given half a picture would draw garbage.
//!
//! Parameter sets come from the SDP (`sprop-parameter-sets` and friends, which retina parses)
//! and from the stream itself, where most cameras repeat them before every keyframe; the
//! latest ones seen win.

use crate::decode::{Keyframe, START_CODE};

/// An access unit larger than this is dropped: far above any real keyframe (a 4K IDR is a few
/// MiB), and a bound on what a broken stream makes the agent buffer.
const MAX_ACCESS_UNIT: usize = 16 * 1024 * 1024;

/// The codecs whose RTP payloads this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpCodec {
    H264,
    H265,
}

impl RtpCodec {
    /// The codec of an SDP encoding name (retina gives it in lowercase).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        match name {
            "h264" => Some(Self::H264),
            "h265" => Some(Self::H265),
            _ => None,
        }
    }

    fn header_len(self) -> usize {
        match self {
            Self::H264 => 1,
            Self::H265 => 2,
        }
    }

    fn nal_type(self, header: u8) -> u8 {
        match self {
            Self::H264 => header & 0x1F,
            Self::H265 => (header >> 1) & 0x3F,
        }
    }

    fn is_keyframe(self, nal_type: u8) -> bool {
        match self {
            // IDR slice.
            Self::H264 => nal_type == 5,
            // IRAP pictures: BLA, IDR and CRA.
            Self::H265 => (16..=21).contains(&nal_type),
        }
    }

    /// The index into [`ParameterSets`] of a parameter set NAL type, if it is one.
    fn parameter_set(self, nal_type: u8) -> Option<usize> {
        match (self, nal_type) {
            (Self::H264, 7) | (Self::H265, 33) => Some(1),
            (Self::H264, 8) | (Self::H265, 34) => Some(2),
            (Self::H265, 32) => Some(0),
            _ => None,
        }
    }
}

/// VPS (H.265 only), SPS and PPS: the latest of each, as NAL units without start codes.
type ParameterSets = [Option<Vec<u8>>; 3];

/// Rebuilds access units from RTP payloads until one holds a keyframe.
#[derive(Debug)]
pub struct KeyframeAssembler {
    codec: RtpCodec,
    parameter_sets: ParameterSets,
    /// The access unit being received, Annex B.
    unit: Vec<u8>,
    /// Its RTP timestamp; `None` between units.
    timestamp: Option<i64>,
    keyframe: bool,
    /// Lost packets, a fragment without its start, an unreadable packet: dropped at its end.
    broken: bool,
    /// Where the NAL unit that a fragmentation unit is rebuilding starts in `unit`.
    fragment_start: Option<usize>,
    /// The timestamp of the last packet seen, caught or skipped.
    seen: Option<i64>,
}

impl KeyframeAssembler {
    /// `sdp_parameter_sets`: the NAL units from the session description (for H.264 SPS and
    /// PPS, for H.265 VPS, SPS and PPS), in-band ones replace them.
    pub fn new(codec: RtpCodec, sdp_parameter_sets: &[&[u8]]) -> Self {
        let mut assembler = Self {
            codec,
            parameter_sets: ParameterSets::default(),
            unit: Vec::new(),
            timestamp: None,
            keyframe: false,
            broken: false,
            fragment_start: None,
            seen: None,
        };
        for nal in sdp_parameter_sets {
            assembler.remember_parameter_set(nal);
        }
        assembler
    }

    pub fn codec(&self) -> RtpCodec {
        self.codec
    }

    /// Adds one RTP packet of the stream (`lost`: packets lost just before it). Returns a
    /// keyframe when this packet completes one.
    pub fn push(
        &mut self,
        timestamp: i64,
        payload: &[u8],
        mark: bool,
        lost: u16,
    ) -> Option<Keyframe> {
        let mut done = None;
        if self.timestamp.is_some_and(|t| t != timestamp) {
            // The marker packet of the previous unit was lost (or never sent).
            done = self.finish();
        }
        if self.timestamp.is_none() {
            // Catching may start in the middle of a unit: one whose timestamp was already seen
            // (or that began before the first packet seen) has lost its beginning.
            self.start(timestamp, self.seen.is_none_or(|seen| seen == timestamp));
        }
        self.seen = Some(timestamp);
        if lost > 0 {
            self.broken = true;
        }
        if !self.broken {
            self.add_payload(payload);
        }
        if mark {
            done = done.or(self.finish());
        }
        done
    }

    /// A packet while no keyframe is wanted: only its timestamp is noted (to know where the
    /// next unit begins), and a unit in progress is dropped with its buffer. Two stores per
    /// packet when idle.
    pub fn skip(&mut self, timestamp: i64) {
        self.seen = Some(timestamp);
        if self.timestamp.is_some() {
            self.unit = Vec::new();
            self.timestamp = None;
            self.fragment_start = None;
        }
    }

    /// Whether a unit is in progress.
    pub fn collecting(&self) -> bool {
        self.timestamp.is_some()
    }

    fn start(&mut self, timestamp: i64, broken: bool) {
        self.unit.clear();
        self.timestamp = Some(timestamp);
        self.keyframe = false;
        self.broken = broken;
        self.fragment_start = None;
    }

    /// Ends the current unit; returns it if it is a complete keyframe.
    fn finish(&mut self) -> Option<Keyframe> {
        self.timestamp = None;
        if self.fragment_start.is_some() {
            // A fragmentation unit without its end.
            self.broken = true;
        }
        if self.broken || !self.keyframe {
            self.unit.clear();
            return None;
        }
        let mut annex_b = Vec::with_capacity(self.unit.len() + 256);
        for nal in self.parameter_sets.iter().flatten() {
            annex_b.extend_from_slice(&START_CODE);
            annex_b.extend_from_slice(nal);
        }
        annex_b.append(&mut self.unit);
        Some(match self.codec {
            RtpCodec::H264 => Keyframe::H264(annex_b),
            RtpCodec::H265 => Keyframe::H265(annex_b),
        })
    }

    fn add_payload(&mut self, payload: &[u8]) {
        let header_len = self.codec.header_len();
        let Some(header) = payload.get(..header_len) else {
            self.broken = true;
            return;
        };
        let kind = self.codec.nal_type(header[0]);
        let ok = match (self.codec, kind) {
            (RtpCodec::H264, 1..=23) | (RtpCodec::H265, 0..=47) => {
                self.add_nal(payload);
                true
            }
            // STAP-A, AP: 16-bit sizes, each followed by a NAL unit (no DON fields: those
            // come only with interleaving, which is not read here).
            (RtpCodec::H264, 24) | (RtpCodec::H265, 48) => {
                self.add_aggregate(&payload[header_len..])
            }
            (RtpCodec::H264, 28) => {
                self.add_fragment(payload, 2, |p| vec![(p[0] & 0xE0) | (p[1] & 0x1F)])
            }
            (RtpCodec::H265, 49) => self.add_fragment(payload, 3, |p| {
                vec![(p[0] & 0x81) | ((p[2] & 0x3F) << 1), p[1]]
            }),
            // STAP-B, MTAP, FU-B (interleaved mode), PACI, reserved types.
            _ => false,
        };
        if !ok {
            self.broken = true;
        }
    }

    /// Adds one whole NAL unit.
    fn add_nal(&mut self, nal: &[u8]) {
        if nal.len() < self.codec.header_len() {
            self.broken = true;
            return;
        }
        if self.unit.len() + nal.len() + START_CODE.len() > MAX_ACCESS_UNIT {
            self.broken = true;
            return;
        }
        self.note(nal);
        self.unit.extend_from_slice(&START_CODE);
        self.unit.extend_from_slice(nal);
    }

    fn add_aggregate(&mut self, mut rest: &[u8]) -> bool {
        if rest.is_empty() {
            return false;
        }
        while !rest.is_empty() {
            let Some((size, tail)) = rest.split_at_checked(2) else {
                return false;
            };
            let len = usize::from(u16::from_be_bytes([size[0], size[1]]));
            let Some(nal) = tail.get(..len) else {
                return false;
            };
            self.add_nal(nal);
            rest = &tail[len..];
        }
        true
    }

    /// A fragmentation unit: `fu_len` bytes of indicator and FU header before the fragment;
    /// `header` rebuilds the NAL unit header from them.
    fn add_fragment(
        &mut self,
        payload: &[u8],
        fu_len: usize,
        header: fn(&[u8]) -> Vec<u8>,
    ) -> bool {
        let Some(fu) = payload.get(..fu_len) else {
            return false;
        };
        let (start, end) = (fu[fu_len - 1] & 0x80 != 0, fu[fu_len - 1] & 0x40 != 0);
        let data = &payload[fu_len..];
        if start {
            if self.fragment_start.is_some() {
                return false;
            }
            self.fragment_start = Some(self.unit.len());
            self.unit.extend_from_slice(&START_CODE);
            self.unit.extend_from_slice(&header(fu));
        } else if self.fragment_start.is_none() {
            return false;
        }
        if self.unit.len() + data.len() > MAX_ACCESS_UNIT {
            return false;
        }
        self.unit.extend_from_slice(data);
        if end && let Some(at) = self.fragment_start.take() {
            let nal = self.unit[at + START_CODE.len()..].to_vec();
            self.note(&nal);
        }
        true
    }

    /// Notes what a complete NAL unit is: part of a keyframe, or a parameter set.
    fn note(&mut self, nal: &[u8]) {
        let kind = self.codec.nal_type(nal[0]);
        if self.codec.is_keyframe(kind) {
            self.keyframe = true;
        }
        self.remember_parameter_set(nal);
    }

    fn remember_parameter_set(&mut self, nal: &[u8]) {
        let Some(&first) = nal.first() else { return };
        if nal.len() < self.codec.header_len() {
            return;
        }
        if let Some(i) = self.codec.parameter_set(self.codec.nal_type(first)) {
            self.parameter_sets[i] = Some(nal.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1E];
    const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|nal| START_CODE.iter().chain(nal.iter()).copied())
            .collect()
    }

    /// An assembler that has seen the end of an earlier unit.
    fn h264(sdp: &[&[u8]]) -> KeyframeAssembler {
        let mut a = KeyframeAssembler::new(RtpCodec::H264, sdp);
        a.skip(-1);
        a
    }

    #[test]
    fn a_single_nal_idr_comes_with_the_sdp_parameter_sets() {
        let mut a = h264(&[SPS, PPS]);
        assert_eq!(a.push(0, &[0x41, 1, 2], true, 0), None, "not a keyframe");
        let idr = [0x65, 0xAA, 0xBB];
        assert_eq!(
            a.push(3000, &idr, true, 0),
            Some(Keyframe::H264(annex_b(&[SPS, PPS, &idr])))
        );
    }

    #[test]
    fn stap_a_and_fu_a_are_reassembled_and_in_band_parameter_sets_win() {
        let mut a = h264(&[&[0x67, 0x00], &[0x68, 0x00]]);
        // STAP-A with SPS and PPS, then an IDR in three FU-A fragments.
        let mut stap = vec![0x78];
        for nal in [SPS, PPS] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        assert_eq!(a.push(90, &stap, false, 0), None);
        assert_eq!(a.push(90, &[0x7C, 0x85, 1, 2], false, 0), None);
        assert_eq!(a.push(90, &[0x7C, 0x05, 3], false, 0), None);
        let frame = a.push(90, &[0x7C, 0x45, 4], true, 0);
        assert_eq!(
            frame,
            Some(Keyframe::H264(annex_b(&[
                SPS,
                PPS,
                SPS,
                PPS,
                &[0x65, 1, 2, 3, 4]
            ])))
        );
    }

    #[test]
    fn a_unit_with_a_lost_packet_is_dropped_and_the_next_keyframe_taken() {
        let mut a = h264(&[SPS, PPS]);
        assert_eq!(a.push(0, &[0x7C, 0x85, 1], false, 0), None);
        assert_eq!(
            a.push(0, &[0x7C, 0x45, 2], true, 1),
            None,
            "lost a middle fragment"
        );
        assert!(a.push(10, &[0x65, 9], true, 0).is_some());
    }

    #[test]
    fn a_unit_caught_in_the_middle_is_not_a_keyframe() {
        let mut a = h264(&[SPS, PPS]);
        assert_eq!(a.push(0, &[0x7C, 0x85, 1], false, 0), None);
        assert!(a.collecting());
        a.skip(0);
        assert!(!a.collecting());
        // Resumed in the same unit: its beginning is gone.
        assert_eq!(a.push(0, &[0x65, 2], true, 0), None);
        // A fragment without its start.
        assert_eq!(a.push(5, &[0x7C, 0x05, 3], false, 0), None);
        assert_eq!(a.push(5, &[0x7C, 0x45, 4], true, 0), None);
        assert!(a.push(6, &[0x65, 5], true, 0).is_some());
    }

    #[test]
    fn a_missing_marker_ends_the_unit_at_the_next_timestamp() {
        let mut a = h264(&[SPS, PPS]);
        assert_eq!(a.push(0, &[0x65, 1], false, 0), None);
        assert_eq!(
            a.push(1, &[0x41, 2], false, 0),
            Some(Keyframe::H264(annex_b(&[SPS, PPS, &[0x65, 1]])))
        );
    }

    #[test]
    fn unreadable_payloads_break_the_unit_without_panicking() {
        let payloads: [&[u8]; 7] = [
            &[],
            &[0x78],
            &[0x78, 0x00, 0x09, 0x65],
            &[0x7C],
            &[0x79, 0, 0],
            &[0x60 | 29, 0x85],
            &[0x00],
        ];
        for payload in payloads {
            let mut a = h264(&[SPS, PPS]);
            assert_eq!(a.push(0, &[0x65, 1], false, 0), None);
            assert_eq!(a.push(0, payload, true, 0), None, "{payload:?}");
        }
    }

    #[test]
    fn h265_aggregation_and_fragmentation_units_are_read() {
        let vps: &[u8] = &[0x40, 0x01, 0x0C];
        let sps: &[u8] = &[0x42, 0x01, 0x01];
        let pps: &[u8] = &[0x44, 0x01, 0xC1];
        let mut a = KeyframeAssembler::new(RtpCodec::H265, &[]);
        assert_eq!(
            a.push(6, &[0x02, 0x01, 0x55], true, 0),
            None,
            "the first unit may be cut"
        );
        // AP (type 48) with VPS, SPS and PPS.
        let mut ap = vec![48 << 1, 0x01];
        for nal in [vps, sps, pps] {
            ap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            ap.extend_from_slice(nal);
        }
        assert_eq!(a.push(7, &ap, false, 0), None);
        // An IDR_W_RADL (type 19) in two FUs (type 49).
        assert_eq!(a.push(7, &[49 << 1, 0x01, 0x80 | 19, 0xA], false, 0), None);
        let frame = a.push(7, &[49 << 1, 0x01, 0x40 | 19, 0xB], true, 0);
        assert_eq!(
            frame,
            Some(Keyframe::H265(annex_b(&[
                vps,
                sps,
                pps,
                vps,
                sps,
                pps,
                &[19 << 1, 0x01, 0xA, 0xB]
            ])))
        );
        // A trailing picture (type 1) is no keyframe.
        assert_eq!(a.push(8, &[0x02, 0x01, 0x55], true, 0), None);
    }
}
