//! The simulator backend: finds issues in an image by colour alone. The simulated world
//! paints each category in its own colours on grey and green ground; this backend
//! segments the saturated and the bright pixels, groups them into objects (bridging
//! the gaps between bikes and between people), and names each group by the colour most
//! of its pixels are nearest to. It never sees the simulator's ground truth.

use super::{decode_jpeg, Category, DetectError, Detection, Detector};

/// Pixels per block of the coarse grid the grouping runs on.
const BLOCK: usize = 4;
/// Blocks bridged between parts of one object (a gap of up to ~12 px, 0.8 m at 60 m).
const BRIDGE: isize = 2;

/// Reference colours (RGB) of each category's paint.
const KEYS: [([f32; 3], Category); 10] = [
    ([160.0, 100.0, 45.0], Category::PiledObjects),
    ([95.0, 55.0, 25.0], Category::PiledObjects),
    ([205.0, 30.0, 35.0], Category::OutOfStoreBusiness),
    ([235.0, 200.0, 25.0], Category::MobileVendor),
    ([30.0, 80.0, 220.0], Category::BikeParking),
    ([215.0, 40.0, 175.0], Category::IllegalPoster),
    ([235.0, 150.0, 215.0], Category::IllegalPoster),
    ([75.0, 25.0, 105.0], Category::Crowd),
    ([45.0, 165.0, 65.0], Category::Garbage),
    ([255.0, 125.0, 0.0], Category::FireSmoke),
];

/// Colour analysis tuned to the simulator's palette.
#[derive(Clone, Debug)]
pub struct ColourDetector {
    /// Spread between the largest and smallest channel above which a pixel is paint, not
    /// ground (grass spreads by ~30).
    pub min_saturation: u8,
    /// Smallest channel above which a pixel is white paint (paving tops out near 160).
    pub min_white: u8,
    /// Fewest paint pixels an object must have.
    pub min_pixels: usize,
}

impl Default for ColourDetector {
    fn default() -> Self {
        Self {
            min_saturation: 48,
            min_white: 205,
            min_pixels: 20,
        }
    }
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

impl ColourDetector {
    /// Detects objects in RGB pixels.
    pub fn detect_rgb(&self, w: usize, h: usize, rgb: &[u8]) -> Vec<Detection> {
        let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
        // 0: ground, 1: white, 2: saturated paint.
        let mut class = vec![0u8; w * h];
        let mut count = vec![0u16; bw * bh];
        // Every pixel of every photo passes here: plain comparisons, not Ord::max, which
        // an unoptimised (test) build calls rather than inlines.
        for (i, p) in rgb.chunks_exact(3).take(w * h).enumerate() {
            let (r, g, b) = (p[0], p[1], p[2]);
            let (hi, lo) = if r > g { (r, g) } else { (g, r) };
            let mx = if b > hi { b } else { hi };
            let mn = if b < lo { b } else { lo };
            let c = if mx - mn >= self.min_saturation {
                2
            } else if mn >= self.min_white {
                1
            } else {
                0
            };
            if c > 0 {
                class[i] = c;
                count[(i / w / BLOCK) * bw + (i % w) / BLOCK] += 1;
            }
        }
        let on: Vec<bool> = count.iter().map(|&n| n >= 2).collect();
        let mut parent: Vec<u32> = (0..(bw * bh) as u32).collect();
        for by in 0..bh as isize {
            for bx in 0..bw as isize {
                let i = by as usize * bw + bx as usize;
                if !on[i] {
                    continue;
                }
                // Look back only (earlier rows, or this row to the left): each pair once.
                for dy in -BRIDGE..=0 {
                    for dx in -BRIDGE..=BRIDGE {
                        if dy == 0 && dx >= 0 {
                            continue;
                        }
                        let (ny, nx) = (by + dy, bx + dx);
                        if ny < 0 || nx < 0 || nx >= bw as isize {
                            continue;
                        }
                        let j = ny as usize * bw + nx as usize;
                        if on[j] {
                            let (a, b) = (find(&mut parent, i as u32), find(&mut parent, j as u32));
                            if a != b {
                                parent[a.max(b) as usize] = a.min(b);
                            }
                        }
                    }
                }
            }
        }
        struct Group {
            bbox: [usize; 4],
            votes: [u32; 8],
            paint: usize,
        }
        let mut groups: std::collections::HashMap<u32, Group> = Default::default();
        for by in 0..bh {
            for bx in 0..bw {
                let i = by * bw + bx;
                if !on[i] {
                    continue;
                }
                let root = find(&mut parent, i as u32);
                let g = groups.entry(root).or_insert(Group {
                    bbox: [usize::MAX, usize::MAX, 0, 0],
                    votes: [0; 8],
                    paint: 0,
                });
                for y in by * BLOCK..((by + 1) * BLOCK).min(h) {
                    for x in bx * BLOCK..((bx + 1) * BLOCK).min(w) {
                        let c = class[y * w + x];
                        if c == 0 {
                            continue;
                        }
                        g.bbox = [
                            g.bbox[0].min(x),
                            g.bbox[1].min(y),
                            g.bbox[2].max(x + 1),
                            g.bbox[3].max(y + 1),
                        ];
                        g.paint += 1;
                        if c == 2 {
                            let p = &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
                            let p = [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])];
                            let best = KEYS
                                .iter()
                                .min_by(|a, b| dist2(a.0, p).total_cmp(&dist2(b.0, p)))
                                .map(|k| k.1);
                            if let Some(cat) = best {
                                g.votes[cat as usize] += 1;
                            }
                        }
                    }
                }
            }
        }
        let mut out: Vec<Detection> = groups
            .into_values()
            .filter(|g| g.paint >= self.min_pixels)
            .filter_map(|g| {
                let total: u32 = g.votes.iter().sum();
                let (best, n) = g.votes.iter().enumerate().max_by_key(|(_, n)| **n)?;
                if total < 8 {
                    return None; // white only: a roof light or a marking, not a category
                }
                let share = *n as f32 / total as f32;
                let size = (g.paint as f32 / 60.0).min(1.0);
                Some(Detection {
                    category: Category::ALL[best],
                    confidence: (share * (0.6 + 0.4 * size)).clamp(0.0, 1.0),
                    bbox: g.bbox.map(|v| v as f32),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.bbox[1]
                .total_cmp(&b.bbox[1])
                .then(a.bbox[0].total_cmp(&b.bbox[0]))
        });
        out
    }
}

fn dist2(a: [f32; 3], b: [f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

impl Detector for ColourDetector {
    fn name(&self) -> &str {
        "colour"
    }

    fn detect(&self, jpeg: &[u8]) -> Result<Vec<Detection>, DetectError> {
        let (w, h, rgb) = decode_jpeg(jpeg)?;
        Ok(self.detect_rgb(w as usize, h as usize, &rgb))
    }
}
