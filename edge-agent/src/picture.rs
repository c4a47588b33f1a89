//! Picture health (SPEC section 7), pure: measures of one decoded picture and the per-camera
//! state machine that turns a series of them into `ok`, `black`, `uniform`, `frozen` or
//! `unknown`.
//!
//! A camera can stream at full rate and bitrate while its picture is useless, and frame
//! counters cannot see that. So once per snapshot interval the agent hands the camera's latest
//! decoded luma plane to [`Classifier::observe`]. Everything here is a function of its inputs
//! (the time included), so the tests drive every state and transition without a clock or a
//! camera; [`crate::snapshots`] runs it.
//!
//! # Measures
//!
//! The picture is reduced to a grid of [`GRID_COLUMNS`] × [`GRID_ROWS`] cells, each the mean
//! luma of its block. Averaging over a block removes sensor noise (uncorrelated from pixel to
//! pixel) while keeping what a scene has: structure at the scale of a cell. Then:
//!
//! - `luma_mean`: the mean luma of every pixel, 0..255.
//! - `stddev`: the standard deviation of the cell means (flatness): near 0 for one flat colour,
//!   however noisy the sensor.
//! - `change_pct`: the percentage of cells whose mean moved by more than [`CELL_CHANGE`] luma
//!   levels since the previous snapshot (compression noise moves a cell by a level or two).
//!
//! # States
//!
//! Checked in this order, each only when it is in the camera's `picture_checks`:
//!
//! | state | when | default bound |
//! |---|---|---|
//! | `black` | `luma_mean` < `black_max_luma` | 20 (video black is 16) |
//! | `uniform` | `stddev` < `uniform_max_stddev` | 3 luma levels |
//! | `frozen` | every snapshot for `frozen_after_seconds` changed in less than `frozen_max_change_pct` of the cells, and the camera is not a `static_scene` | 300 s, 1 % |
//! | `ok` | none of the above | |
//! | `unknown` | no decodable picture at this check | |
//!
//! `since` is when the current state began: the check that first saw it, except for `frozen`,
//! whose `since` is the snapshot since which the picture has not changed (the moment it froze,
//! as far as the agent can tell).

use chrono::{DateTime, Utc};
use std::{fmt, time::Duration};
use streamwatch_protocol::{PictureReport, PictureState};

/// Grid columns of the downscaled picture (16:9, like most cameras).
pub const GRID_COLUMNS: usize = 32;
/// Grid rows of the downscaled picture.
pub const GRID_ROWS: usize = 18;
/// A cell whose mean luma moved by more than this many levels counts as changed. Re-encoding
/// a still scene moves cell means by a level or two; anything that moves in the scene, much
/// more.
pub const CELL_CHANGE: f64 = 4.0;

/// Default `black_max_luma`: video black is 16 (limited range), a covered lens 0..20.
pub const DEFAULT_BLACK_MAX_LUMA: f64 = 20.0;
/// Default `uniform_max_stddev`, in luma levels across the grid's cells.
pub const DEFAULT_UNIFORM_MAX_STDDEV: f64 = 3.0;
/// Default `frozen_max_change_pct`: fewer than 1 % of the cells changed (5 of 576) is "no
/// change"; an on-screen clock alone changes a few cells.
pub const DEFAULT_FROZEN_MAX_CHANGE_PCT: f64 = 1.0;
/// Default `frozen_after_seconds`.
pub const DEFAULT_FROZEN_AFTER: Duration = Duration::from_secs(300);

/// Why a luma plane cannot be measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PictureError {
    /// Width or height is zero.
    Empty { width: usize, height: usize },
    /// The stride is narrower than a row.
    Stride { width: usize, stride: usize },
    /// The buffer is shorter than the plane it should hold.
    Short { needed: usize, len: usize },
}

impl fmt::Display for PictureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { width, height } => write!(f, "empty picture ({width}x{height})"),
            Self::Stride { width, stride } => {
                write!(f, "stride {stride} is narrower than the width {width}")
            }
            Self::Short { needed, len } => {
                write!(f, "luma plane needs {needed} bytes, got {len}")
            }
        }
    }
}

impl std::error::Error for PictureError {}

/// A borrowed luma (Y) plane, as a decoder hands it out: rows `stride` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct LumaView<'a> {
    width: usize,
    height: usize,
    stride: usize,
    data: &'a [u8],
}

impl<'a> LumaView<'a> {
    /// Checks that `data` holds `height` rows of `width` bytes, `stride` bytes apart (the last
    /// row may stop at `width`).
    pub fn new(
        width: usize,
        height: usize,
        stride: usize,
        data: &'a [u8],
    ) -> Result<Self, PictureError> {
        if width == 0 || height == 0 {
            return Err(PictureError::Empty { width, height });
        }
        if stride < width {
            return Err(PictureError::Stride { width, stride });
        }
        let needed = (height - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(width))
            .unwrap_or(usize::MAX);
        if data.len() < needed {
            return Err(PictureError::Short {
                needed,
                len: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            stride,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Row `y` (`y < height`), `width` bytes.
    fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width]
    }
}

/// An owned, tightly packed luma picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaImage {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl LumaImage {
    /// `data` holds exactly `width * height` bytes, row after row.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self, PictureError> {
        LumaView::new(width, height, width, &data)?;
        if data.len() != width * height {
            return Err(PictureError::Short {
                needed: width * height,
                len: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A packed copy of `view` (a decoder's buffer is reused for the next frame).
    pub fn from_view(view: &LumaView<'_>) -> Self {
        let mut data = Vec::with_capacity(view.width * view.height);
        for y in 0..view.height {
            data.extend_from_slice(view.row(y));
        }
        Self {
            width: view.width,
            height: view.height,
            data,
        }
    }

    pub fn view(&self) -> LumaView<'_> {
        LumaView {
            width: self.width,
            height: self.height,
            stride: self.width,
            data: &self.data,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The bytes, row after row.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// At most `max_width` wide, the aspect ratio kept (area average: each output pixel is the
    /// mean of the input pixels it covers). A narrower picture comes back unchanged.
    pub fn scaled_to_width(&self, max_width: usize) -> Self {
        if self.width <= max_width || max_width == 0 {
            return self.clone();
        }
        let width = max_width;
        let height = ((self.height * width) as f64 / self.width as f64)
            .round()
            .max(1.0) as usize;
        // The input columns [x0, x1) of each output column.
        let spans = |out: usize, input: usize| -> Vec<(usize, usize)> {
            (0..out)
                .map(|i| {
                    let start = i * input / out;
                    let end = ((i + 1) * input / out).max(start + 1).min(input);
                    (start, end)
                })
                .collect()
        };
        let columns = spans(width, self.width);
        let rows = spans(height, self.height);
        let mut data = Vec::with_capacity(width * height);
        let mut sums = vec![0u64; width];
        for &(y0, y1) in &rows {
            sums.iter_mut().for_each(|s| *s = 0);
            for y in y0..y1 {
                let row = &self.data[y * self.width..(y + 1) * self.width];
                for (sum, &(x0, x1)) in sums.iter_mut().zip(&columns) {
                    *sum += row[x0..x1].iter().map(|&v| u64::from(v)).sum::<u64>();
                }
            }
            for (sum, &(x0, x1)) in sums.iter().zip(&columns) {
                let count = ((x1 - x0) * (y1 - y0)) as u64;
                data.push(((sum + count / 2) / count) as u8);
            }
        }
        Self {
            width,
            height,
            data,
        }
    }
}

/// The downscaled picture: the mean luma of each cell, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    columns: usize,
    rows: usize,
    cells: Vec<f64>,
}

impl Grid {
    /// The grid of `view`: [`GRID_COLUMNS`] × [`GRID_ROWS`] cells, fewer for a picture smaller
    /// than that (no cell is ever empty).
    pub fn of(view: &LumaView<'_>) -> Self {
        let columns = GRID_COLUMNS.min(view.width);
        let rows = GRID_ROWS.min(view.height);
        let column_of: Vec<usize> = (0..view.width).map(|x| x * columns / view.width).collect();
        let mut sums = vec![0u64; columns * rows];
        let mut counts = vec![0u64; columns * rows];
        for y in 0..view.height {
            let base = (y * rows / view.height) * columns;
            for (&v, &c) in view.row(y).iter().zip(&column_of) {
                sums[base + c] += u64::from(v);
                counts[base + c] += 1;
            }
        }
        let cells = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &n)| s as f64 / n.max(1) as f64)
            .collect();
        Self {
            columns,
            rows,
            cells,
        }
    }

    pub fn cells(&self) -> &[f64] {
        &self.cells
    }

    /// The standard deviation of the cell means (population).
    pub fn stddev(&self) -> f64 {
        let n = self.cells.len() as f64;
        let mean = self.cells.iter().sum::<f64>() / n;
        let var = self.cells.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n;
        var.sqrt()
    }

    /// The percentage of cells that moved by more than [`CELL_CHANGE`] since `previous`;
    /// `None` when the two grids have different shapes (the resolution changed: not
    /// comparable).
    pub fn change_pct(&self, previous: &Grid) -> Option<f64> {
        if (self.columns, self.rows) != (previous.columns, previous.rows) {
            return None;
        }
        let changed = self
            .cells
            .iter()
            .zip(&previous.cells)
            .filter(|(a, b)| (*a - *b).abs() > CELL_CHANGE)
            .count();
        Some(100.0 * changed as f64 / self.cells.len() as f64)
    }
}

/// What one picture measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    /// Mean luma of every pixel, 0..255.
    pub luma_mean: f64,
    /// Standard deviation of the grid's cell means, in luma levels.
    pub stddev: f64,
    /// Cells changed since the previous snapshot, percent; `None` without a comparable one.
    pub change_pct: Option<f64>,
}

/// Measures `view` against the previous snapshot's grid; also returns this picture's grid,
/// to compare the next one with.
pub fn measure(view: &LumaView<'_>, previous: Option<&Grid>) -> (Measures, Grid) {
    let grid = Grid::of(view);
    let total: u64 = (0..view.height)
        .map(|y| view.row(y).iter().map(|&v| u64::from(v)).sum::<u64>())
        .sum();
    let luma_mean = total as f64 / (view.width * view.height) as f64;
    let measures = Measures {
        luma_mean,
        stddev: grid.stddev(),
        change_pct: previous.and_then(|p| grid.change_pct(p)),
    };
    (measures, grid)
}

/// One of the picture checks a camera can run (`picture_checks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    Black,
    Uniform,
    Frozen,
}

impl Check {
    pub const ALL: [Self; 3] = [Self::Black, Self::Uniform, Self::Frozen];

    /// The name in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Black => "black",
            Self::Uniform => "uniform",
            Self::Frozen => "frozen",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// How one camera's pictures are judged (its `[[camera]]` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct PictureSettings {
    /// The checks that apply (`picture_checks`); default every one.
    pub checks: Vec<Check>,
    /// The camera looks at a scene that does not move: no `frozen` check.
    pub static_scene: bool,
    /// How long the picture must stay unchanged to be `frozen`.
    pub frozen_after: Duration,
    /// `black` below this mean luma.
    pub black_max_luma: f64,
    /// `uniform` below this standard deviation of the cell means.
    pub uniform_max_stddev: f64,
    /// A snapshot with less than this percentage of changed cells is "unchanged".
    pub frozen_max_change_pct: f64,
}

impl Default for PictureSettings {
    fn default() -> Self {
        Self {
            checks: Check::ALL.to_vec(),
            static_scene: false,
            frozen_after: DEFAULT_FROZEN_AFTER,
            black_max_luma: DEFAULT_BLACK_MAX_LUMA,
            uniform_max_stddev: DEFAULT_UNIFORM_MAX_STDDEV,
            frozen_max_change_pct: DEFAULT_FROZEN_MAX_CHANGE_PCT,
        }
    }
}

impl PictureSettings {
    fn runs(&self, check: Check) -> bool {
        self.checks.contains(&check) && !(check == Check::Frozen && self.static_scene)
    }
}

/// The state of one picture, given its measures and how long the picture has not changed
/// (`None`: it just changed, or there is nothing to compare with).
pub fn classify(
    settings: &PictureSettings,
    measures: &Measures,
    unchanged_for: Option<Duration>,
) -> PictureState {
    if settings.runs(Check::Black) && measures.luma_mean < settings.black_max_luma {
        PictureState::Black
    } else if settings.runs(Check::Uniform) && measures.stddev < settings.uniform_max_stddev {
        PictureState::Uniform
    } else if settings.runs(Check::Frozen)
        && unchanged_for.is_some_and(|d| d >= settings.frozen_after)
    {
        PictureState::Frozen
    } else {
        PictureState::Ok
    }
}

/// One camera's picture state across snapshots.
#[derive(Debug, Clone)]
pub struct Classifier {
    settings: PictureSettings,
    /// The previous snapshot's grid and when it was taken.
    previous: Option<(Grid, DateTime<Utc>)>,
    /// The first of the snapshots that have not changed since, while they have not.
    unchanged_since: Option<DateTime<Utc>>,
    /// The latest report.
    report: Option<PictureReport>,
}

impl Classifier {
    pub fn new(settings: PictureSettings) -> Self {
        Self {
            settings,
            previous: None,
            unchanged_since: None,
            report: None,
        }
    }

    pub fn settings(&self) -> &PictureSettings {
        &self.settings
    }

    /// The latest report; `None` before the first check.
    pub fn report(&self) -> Option<&PictureReport> {
        self.report.as_ref()
    }

    /// One check at `now`: the camera's latest decoded picture, or `None` when there is none
    /// (no frame decoded yet, an unsupported codec, the camera down).
    pub fn observe(&mut self, now: DateTime<Utc>, picture: Option<&LumaView<'_>>) -> PictureReport {
        let (state, luma_mean, change_pct, frozen_since) = match picture {
            None => {
                // The chain of unchanged snapshots is broken: a picture after the gap starts
                // a new one.
                self.previous = None;
                self.unchanged_since = None;
                (PictureState::Unknown, -1.0, -1.0, None)
            }
            Some(view) => {
                let (measures, grid) = measure(view, self.previous.as_ref().map(|(g, _)| g));
                let unchanged = measures
                    .change_pct
                    .is_some_and(|pct| pct < self.settings.frozen_max_change_pct);
                self.unchanged_since = match (unchanged, &self.previous) {
                    (true, Some((_, previous_at))) => {
                        Some(self.unchanged_since.unwrap_or(*previous_at))
                    }
                    _ => None,
                };
                let unchanged_for = self
                    .unchanged_since
                    .and_then(|since| (now - since).to_std().ok());
                let state = classify(&self.settings, &measures, unchanged_for);
                self.previous = Some((grid, now));
                (
                    state,
                    round2(measures.luma_mean),
                    measures.change_pct.map_or(-1.0, round2),
                    self.unchanged_since,
                )
            }
        };
        let since = match &self.report {
            Some(r) if r.state == state => r.since,
            _ if state == PictureState::Frozen => frozen_since.unwrap_or(now),
            _ => now,
        };
        let report = PictureReport {
            state,
            since,
            checked_at: now,
            luma_mean,
            change_pct,
        };
        self.report = Some(report.clone());
        report
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .unwrap_or_else(|| panic!("time"))
    }

    fn image(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> LumaImage {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        LumaImage::new(width, height, data).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A deterministic pseudo-random level per (block, seed).
    fn hash(a: usize, b: usize, seed: usize) -> u8 {
        let mut h = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ (seed as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 32;
        (h & 0xff) as u8
    }

    /// A textured scene; another `seed` is another scene.
    fn scene(seed: usize) -> LumaImage {
        image(320, 180, |x, y| 40 + hash(x / 10, y / 10, seed) % 180)
    }

    fn black() -> LumaImage {
        image(320, 180, |x, y| hash(x, y, 7) % 6)
    }

    fn grey() -> LumaImage {
        // Flat mid-grey with ±2 levels of pixel noise: still uniform.
        image(320, 180, |x, y| 126 + hash(x, y, 9) % 5)
    }

    fn observe(c: &mut Classifier, s: i64, picture: Option<&LumaImage>) -> PictureReport {
        let view = picture.map(LumaImage::view);
        c.observe(t(s), view.as_ref())
    }

    fn classifier() -> Classifier {
        Classifier::new(PictureSettings {
            frozen_after: Duration::from_secs(120),
            ..PictureSettings::default()
        })
    }

    #[test]
    fn bad_planes_are_errors_not_panics() {
        let data = [0u8; 10];
        assert_eq!(
            LumaView::new(0, 2, 4, &data).err(),
            Some(PictureError::Empty {
                width: 0,
                height: 2
            })
        );
        assert_eq!(
            LumaView::new(4, 2, 3, &data).err(),
            Some(PictureError::Stride {
                width: 4,
                stride: 3
            })
        );
        assert_eq!(
            LumaView::new(4, 3, 4, &data).err(),
            Some(PictureError::Short {
                needed: 12,
                len: 10
            })
        );
        assert_eq!(
            LumaView::new(usize::MAX, 3, usize::MAX, &data)
                .err()
                .map(|e| e.to_string()),
            Some(format!("luma plane needs {} bytes, got 10", usize::MAX))
        );
        // The last row may end at the width, short of a whole stride.
        assert!(LumaView::new(4, 2, 6, &data).is_ok());
        assert!(LumaImage::new(3, 3, vec![0; 10]).is_err());
    }

    #[test]
    fn a_strided_plane_measures_like_its_packed_copy() {
        // 8x4 picture inside rows of 12 bytes whose padding is 255: the padding must not count.
        let mut data = vec![255u8; 12 * 4];
        for y in 0..4 {
            for x in 0..8 {
                data[y * 12 + x] = (x * 10 + y) as u8;
            }
        }
        let view = LumaView::new(8, 4, 12, &data).unwrap_or_else(|e| panic!("{e}"));
        let packed = LumaImage::from_view(&view);
        assert_eq!(packed.width(), 8);
        assert_eq!(packed.data().len(), 32);
        assert_eq!(measure(&view, None).0, measure(&packed.view(), None).0);
        assert!((measure(&view, None).0.luma_mean - 36.5).abs() < 1e-9);
    }

    #[test]
    fn the_measures_tell_black_flat_and_textured_apart() {
        let (m, grid) = measure(&black().view(), None);
        assert!(m.luma_mean < 3.0, "{m:?}");
        assert_eq!(m.change_pct, None, "nothing to compare with");
        assert_eq!(grid.cells().len(), GRID_COLUMNS * GRID_ROWS);
        let (m, _) = measure(&grey().view(), None);
        assert!((m.luma_mean - 128.0).abs() < 1.0, "{m:?}");
        assert!(m.stddev < 0.5, "noise averages out in a cell: {m:?}");
        let (m, _) = measure(&scene(1).view(), None);
        assert!(m.stddev > 20.0, "{m:?}");
    }

    #[test]
    fn change_is_the_share_of_cells_that_moved() {
        let (_, a) = measure(&scene(1).view(), None);
        let (same, _) = measure(&scene(1).view(), Some(&a));
        assert_eq!(same.change_pct, Some(0.0));
        let (other, _) = measure(&scene(2).view(), Some(&a));
        assert!(other.change_pct.is_some_and(|p| p > 80.0), "{other:?}");
        // One bright block in the corner: 1 of 576 cells.
        let mut corner = scene(1);
        for y in 0..10 {
            for x in 0..10 {
                corner.data[y * 320 + x] = 255;
            }
        }
        let (small, _) = measure(&corner.view(), Some(&a));
        let pct = small.change_pct.unwrap_or(-1.0);
        assert!((pct - 100.0 / 576.0).abs() < 1e-9, "{pct}");
        // A picture of another resolution cannot be compared.
        let (resized, _) = measure(&image(16, 9, |_, _| 0).view(), Some(&a));
        assert_eq!(resized.change_pct, None);
    }

    #[test]
    fn tiny_pictures_get_a_grid_without_empty_cells() {
        let one = image(1, 1, |_, _| 200);
        let (m, grid) = measure(&one.view(), None);
        assert_eq!(grid.cells(), &[200.0]);
        assert_eq!((m.luma_mean, m.stddev), (200.0, 0.0));
        let (_, grid) = measure(&image(5, 40, |x, _| x as u8).view(), None);
        assert_eq!(grid.cells().len(), 5 * GRID_ROWS);
    }

    #[test]
    fn wide_pictures_scale_down_to_the_width_keeping_the_aspect() {
        let wide = image(1920, 1080, |x, y| ((x / 8 + y / 8) % 2 * 200) as u8);
        let small = wide.scaled_to_width(1280);
        assert_eq!((small.width(), small.height()), (1280, 720));
        let (big, _) = measure(&wide.view(), None);
        let (scaled, _) = measure(&small.view(), None);
        assert!((big.luma_mean - scaled.luma_mean).abs() < 1.0);
        let narrow = image(640, 360, |_, _| 9);
        assert_eq!(narrow.scaled_to_width(1280), narrow);
        let odd = image(3001, 7, |_, _| 100).scaled_to_width(1280);
        assert_eq!((odd.width(), odd.height()), (1280, 3));
        assert!(odd.data().iter().all(|&v| v == 100));
    }

    #[test]
    fn a_moving_scene_is_ok() {
        let mut c = classifier();
        for k in 0..10 {
            let r = observe(&mut c, k * 60, Some(&scene(k as usize)));
            assert_eq!(r.state, PictureState::Ok, "check {k}");
            assert_eq!(r.since, t(0));
            assert_eq!(r.checked_at, t(k * 60));
        }
        let r = c.report().cloned().unwrap_or_else(|| panic!("a report"));
        assert!(r.change_pct > 80.0, "{r:?}");
        assert!(r.luma_mean > 100.0, "{r:?}");
    }

    #[test]
    fn the_first_check_without_a_picture_is_unknown_with_unknown_measures() {
        let mut c = classifier();
        assert!(c.report().is_none());
        let r = observe(&mut c, 0, None);
        assert_eq!(
            r,
            PictureReport {
                state: PictureState::Unknown,
                since: t(0),
                checked_at: t(0),
                luma_mean: -1.0,
                change_pct: -1.0,
            }
        );
        let r = observe(&mut c, 60, Some(&scene(1)));
        assert_eq!((r.state, r.since), (PictureState::Ok, t(60)));
        assert_eq!(
            r.change_pct, -1.0,
            "the first picture has nothing to compare with"
        );
    }

    #[test]
    fn a_covered_lens_is_black_and_recovers() {
        let mut c = classifier();
        observe(&mut c, 0, Some(&scene(1)));
        let r = observe(&mut c, 60, Some(&black()));
        assert_eq!((r.state, r.since), (PictureState::Black, t(60)));
        assert!(r.luma_mean < 3.0);
        let r = observe(&mut c, 120, Some(&black()));
        assert_eq!((r.state, r.since), (PictureState::Black, t(60)), "still");
        let r = observe(&mut c, 180, Some(&black()));
        assert_eq!(
            r.state,
            PictureState::Black,
            "black wins over frozen (both hold after 120 s)"
        );
        let r = observe(&mut c, 240, Some(&scene(2)));
        assert_eq!((r.state, r.since), (PictureState::Ok, t(240)));
    }

    #[test]
    fn a_flat_picture_is_uniform_and_recovers() {
        let mut c = classifier();
        let r = observe(&mut c, 0, Some(&grey()));
        assert_eq!((r.state, r.since), (PictureState::Uniform, t(0)));
        assert!((r.luma_mean - 128.0).abs() < 1.0);
        let r = observe(&mut c, 60, Some(&scene(3)));
        assert_eq!((r.state, r.since), (PictureState::Ok, t(60)));
    }

    #[test]
    fn a_picture_unchanged_for_the_bound_is_frozen_since_it_froze_and_recovers() {
        let mut c = classifier();
        observe(&mut c, 0, Some(&scene(1)));
        let r = observe(&mut c, 60, Some(&scene(5)));
        assert_eq!(r.state, PictureState::Ok);
        // Frozen on scene 5 from t=60: unchanged at 120 (60 s), at 180 (120 s: the bound).
        let r = observe(&mut c, 120, Some(&scene(5)));
        assert_eq!((r.state, r.change_pct), (PictureState::Ok, 0.0));
        let r = observe(&mut c, 180, Some(&scene(5)));
        assert_eq!((r.state, r.since), (PictureState::Frozen, t(60)));
        let r = observe(&mut c, 240, Some(&scene(5)));
        assert_eq!((r.state, r.since), (PictureState::Frozen, t(60)));
        assert_eq!(r.checked_at, t(240));
        let r = observe(&mut c, 300, Some(&scene(6)));
        assert_eq!((r.state, r.since), (PictureState::Ok, t(300)));
        // And it takes the whole bound again to freeze anew.
        let r = observe(&mut c, 360, Some(&scene(6)));
        assert_eq!(r.state, PictureState::Ok);
    }

    #[test]
    fn small_changes_below_the_bound_do_not_keep_a_picture_alive() {
        // An on-screen clock: one cell changes every snapshot, the rest is still.
        let mut c = classifier();
        for k in 0..4 {
            let mut picture = scene(1);
            for y in 0..10 {
                for x in 0..10 {
                    picture.data[y * 320 + x] = if k % 2 == 0 { 0 } else { 255 };
                }
            }
            let r = observe(&mut c, k * 60, Some(&picture));
            let expected = if k >= 2 {
                PictureState::Frozen
            } else {
                PictureState::Ok
            };
            assert_eq!(r.state, expected, "check {k}: {r:?}");
        }
    }

    #[test]
    fn a_gap_without_pictures_is_unknown_and_restarts_the_frozen_clock() {
        let mut c = classifier();
        observe(&mut c, 0, Some(&scene(1)));
        observe(&mut c, 60, Some(&scene(1)));
        let r = observe(&mut c, 120, None);
        assert_eq!((r.state, r.since), (PictureState::Unknown, t(120)));
        assert_eq!((r.luma_mean, r.change_pct), (-1.0, -1.0));
        let r = observe(&mut c, 180, Some(&scene(1)));
        assert_eq!((r.state, r.since), (PictureState::Ok, t(180)));
        assert_eq!(
            observe(&mut c, 240, Some(&scene(1))).state,
            PictureState::Ok
        );
        let r = observe(&mut c, 300, Some(&scene(1)));
        assert_eq!((r.state, r.since), (PictureState::Frozen, t(180)));
    }

    #[test]
    fn a_static_scene_is_never_frozen() {
        let mut c = Classifier::new(PictureSettings {
            static_scene: true,
            frozen_after: Duration::from_secs(60),
            ..PictureSettings::default()
        });
        for k in 0..10 {
            assert_eq!(
                observe(&mut c, k * 60, Some(&scene(1))).state,
                PictureState::Ok
            );
        }
        // The other checks still apply.
        assert_eq!(
            observe(&mut c, 600, Some(&black())).state,
            PictureState::Black
        );
    }

    #[test]
    fn only_the_configured_checks_apply() {
        let only = |checks: Vec<Check>| {
            Classifier::new(PictureSettings {
                checks,
                frozen_after: Duration::from_secs(60),
                ..PictureSettings::default()
            })
        };
        // Without the black check a black picture is uniform (it is flat too).
        let mut c = only(vec![Check::Uniform, Check::Frozen]);
        assert_eq!(
            observe(&mut c, 0, Some(&black())).state,
            PictureState::Uniform
        );
        // With neither, a still black picture is frozen.
        let mut c = only(vec![Check::Frozen]);
        assert_eq!(observe(&mut c, 0, Some(&black())).state, PictureState::Ok);
        assert_eq!(
            observe(&mut c, 60, Some(&black())).state,
            PictureState::Frozen
        );
        // With no check at all every picture is ok.
        let mut c = only(Vec::new());
        for (k, p) in [black(), grey(), scene(1), scene(1), scene(1)]
            .iter()
            .enumerate()
        {
            assert_eq!(
                observe(&mut c, k as i64 * 60, Some(p)).state,
                PictureState::Ok
            );
        }
    }

    #[test]
    fn the_bounds_are_the_configured_ones() {
        let dim = image(320, 180, |x, y| 25 + hash(x / 10, y / 10, 3) % 20);
        let mut c = classifier();
        assert_eq!(observe(&mut c, 0, Some(&dim)).state, PictureState::Ok);
        let mut c = Classifier::new(PictureSettings {
            black_max_luma: 40.0,
            ..PictureSettings::default()
        });
        assert_eq!(observe(&mut c, 0, Some(&dim)).state, PictureState::Black);
        let mut c = Classifier::new(PictureSettings {
            uniform_max_stddev: 10.0,
            ..PictureSettings::default()
        });
        assert_eq!(observe(&mut c, 0, Some(&dim)).state, PictureState::Uniform);
    }

    #[test]
    fn check_names_parse() {
        for check in Check::ALL {
            assert_eq!(Check::parse(check.as_str()), Some(check));
        }
        assert_eq!(Check::parse("Black"), None);
        assert_eq!(Check::parse("blurry"), None);
    }

    /// A random picture: size, stride padding and content.
    fn any_plane() -> impl Strategy<Value = (usize, usize, usize, Vec<u8>)> {
        (1usize..80, 1usize..50, 0usize..5).prop_flat_map(|(w, h, pad)| {
            let stride = w + pad;
            let len = (h - 1) * stride + w;
            (
                Just(w),
                Just(h),
                Just(stride),
                prop::collection::vec(any::<u8>(), len..=len),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn measures_stay_in_their_ranges((w, h, stride, data) in any_plane(), other in any::<u8>()) {
            let view = LumaView::new(w, h, stride, &data).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let flat = vec![other; w * h];
            let (_, previous) = measure(&LumaView::new(w, h, w, &flat).map_err(|e| TestCaseError::fail(e.to_string()))?, None);
            let (m, grid) = measure(&view, Some(&previous));
            prop_assert!((0.0..=255.0).contains(&m.luma_mean), "{m:?}");
            prop_assert!((0.0..=128.0).contains(&m.stddev), "{m:?}");
            let pct = m.change_pct.unwrap_or(-1.0);
            prop_assert!((0.0..=100.0).contains(&pct), "{m:?}");
            prop_assert!(grid.cells().len() <= GRID_COLUMNS * GRID_ROWS);
            prop_assert_eq!(grid.change_pct(&grid), Some(0.0));
        }

        #[test]
        fn scaling_keeps_the_bound_and_the_levels((w, h, _stride, _data) in any_plane(), max in 1usize..40, level in any::<u8>()) {
            let img = image(w, h, |_, _| level);
            let s = img.scaled_to_width(max);
            prop_assert_eq!(s.width(), w.min(max));
            prop_assert!(s.height() >= 1);
            prop_assert_eq!(s.data().len(), s.width() * s.height());
            prop_assert!(s.data().iter().all(|&v| v == level));
        }

        #[test]
        fn any_sequence_of_checks_keeps_the_reports_consistent(
            steps in prop::collection::vec((0u8..5, 1i64..200), 1..30),
            static_scene in any::<bool>(),
        ) {
            let mut c = Classifier::new(PictureSettings { static_scene, frozen_after: Duration::from_secs(120), ..PictureSettings::default() });
            let mut now = 0;
            let mut previous: Option<PictureReport> = None;
            for (kind, gap) in steps {
                now += gap;
                let picture = match kind {
                    0 => None,
                    1 => Some(black()),
                    2 => Some(grey()),
                    3 => Some(scene(1)),
                    _ => Some(scene(now as usize)),
                };
                let r = observe(&mut c, now, picture.as_ref());
                prop_assert_eq!(r.checked_at, t(now));
                prop_assert!(r.since <= r.checked_at);
                prop_assert_eq!(r.state == PictureState::Unknown, picture.is_none());
                if static_scene {
                    prop_assert_ne!(r.state, PictureState::Frozen);
                }
                match &previous {
                    Some(p) if p.state == r.state => prop_assert_eq!(p.since, r.since),
                    Some(p) if r.state != PictureState::Frozen => {
                        prop_assert!(r.since > p.checked_at, "a new state begins at this check");
                    }
                    _ => {}
                }
                previous = Some(r);
            }
        }
    }
}
