//! Fuzz targets, one per parser of outside input, run by bolero on stable Rust.
//!
//! Each target takes raw bytes: first every file of its corpus
//! (`tests/__fuzz__/fuzz/<target>/corpus/`, real samples) and of its `crashes/` folder, then
//! random inputs and random mutations of the corpus (byte flips, inserts, deletes, splices
//! and repeats) for a bounded time: `BOLERO_RANDOM_TEST_TIME_MS` per target (1 s when
//! unset; `.ci/run` gives each 20 s). Every input must give a value or a clear error (a
//! message that says something): no panic, no hang (a watchdog ends the run when one
//! input takes over 10 s) and no unbounded allocation (a single request over 256 MiB
//! aborts the run). A failing
//! input is written to `target/fuzz-failures/<target>-<hash>`; copy that one file into the
//! target's `crashes/` folder and `cargo test --test fuzz` replays it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bolero::check;
use gridpatrol::grid::{Datum, GridMap};

/// Refuses any single allocation over this: no 4 KiB input should need it.
const ALLOC_LIMIT: usize = 256 << 20;

struct Bounded;

// SAFETY: forwards to the system allocator; an oversized request gets null, which Rust
// turns into an abort naming the size.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Bounded = Bounded;

/// The longest one input may take (s): far above any parser's need, so only a hang hits it.
const HANG: Duration = Duration::from_secs(10);

/// The files of the target's `corpus/` and `crashes/` folders (the latter may be absent).
fn corpus(target: &str, folder: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/__fuzz__/fuzz")
        .join(target)
        .join(folder);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("corpus file"))
        .collect()
}

/// Saves a failing input where it can be copied from; its path.
fn save(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let file = dir.join(format!("{target}-{hash:016x}"));
    let _ = std::fs::write(&file, input);
    file
}

/// The input each test thread is on, for the watchdog: target, started, bytes.
type Current =
    std::sync::Mutex<std::collections::HashMap<std::thread::ThreadId, (String, Instant, Vec<u8>)>>;

/// A thread that ends the run when one input takes longer than [`HANG`], saving it first.
fn watchdog() -> &'static Current {
    static CURRENT: std::sync::OnceLock<Current> = std::sync::OnceLock::new();
    CURRENT.get_or_init(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(500));
            let g = watchdog().lock().unwrap_or_else(|p| p.into_inner());
            if let Some((target, _, input)) = g.values().find(|(_, t, _)| t.elapsed() > HANG) {
                let file = save(target, input);
                eprintln!(
                    "fuzz target {target}: an input hangs (over {HANG:?}); saved to {} (copy it into tests/__fuzz__/fuzz/{target}/crashes/ to replay)",
                    file.display()
                );
                std::process::abort();
            }
        });
        std::sync::Mutex::new(Default::default())
    })
}

/// Runs `parse` on `input`; on a panic or an empty error message, saves the input and
/// fails naming the file.
fn one(target: &str, input: &[u8], parse: &dyn Fn(&[u8]) -> Option<String>) {
    let me = std::thread::current().id();
    let on = |v: Option<(String, Instant, Vec<u8>)>| {
        let mut g = watchdog().lock().unwrap_or_else(|p| p.into_inner());
        match v {
            Some(v) => g.insert(me, v),
            None => g.remove(&me),
        };
    };
    on(Some((target.to_string(), Instant::now(), input.to_vec())));
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(input)));
    on(None);
    let problem = match &got {
        Err(_) => "panicked",
        Ok(Some(e)) if e.trim().is_empty() => "gave an error with no message",
        Ok(_) => return,
    };
    let file = save(target, input);
    panic!(
        "fuzz target {target}: an input {problem}; saved to {} (copy it into tests/__fuzz__/fuzz/{target}/crashes/ to replay)",
        file.display()
    );
}

/// One mutation of a corpus entry: which entry, then (op, position, byte) steps.
type Mutation = (u16, Vec<(u8, u16, u8)>);

fn mutate(seeds: &[Vec<u8>], (which, steps): &Mutation) -> Vec<u8> {
    let mut v = seeds[*which as usize % seeds.len()].clone();
    for &(op, pos, byte) in steps.iter().take(16) {
        let at = if v.is_empty() {
            0
        } else {
            pos as usize % v.len()
        };
        match op % 6 {
            0 if !v.is_empty() => v[at] = byte,
            1 => v.insert(at, byte),
            2 if !v.is_empty() => {
                v.remove(at);
            }
            3 if !v.is_empty() => v[at] ^= 1 << (byte % 8),
            4 => {
                // Splice in a piece of another entry.
                let other = &seeds[byte as usize % seeds.len()];
                if !other.is_empty() {
                    let from = pos as usize % other.len();
                    let piece = &other[from..(from + 64).min(other.len())];
                    v.splice(at..at, piece.iter().copied());
                }
            }
            _ if !v.is_empty() => {
                // Repeat a run: long lists, deep nesting.
                let end = (at + 1 + byte as usize % 32).min(v.len());
                let run: Vec<u8> = v[at..end].to_vec();
                for _ in 0..(byte % 8) {
                    v.splice(at..at, run.iter().copied());
                }
            }
            _ => {}
        }
    }
    v
}

/// The target's corpus, then random bytes, then random mutations of the corpus.
fn fuzz(target: &str, parse: impl Fn(&[u8]) -> Option<String> + std::panic::RefUnwindSafe) {
    let seeds = corpus(target, "corpus");
    assert!(!seeds.is_empty(), "{target}: empty corpus");
    for s in seeds.iter().chain(&corpus(target, "crashes")) {
        one(target, s, &parse);
    }
    let runs = std::sync::atomic::AtomicU64::new(0);
    let count = || runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    check!().for_each(|input: &[u8]| {
        count();
        one(target, input, &parse)
    });
    let random = runs.swap(0, std::sync::atomic::Ordering::Relaxed);
    check!().with_type::<Mutation>().for_each(|m| {
        count();
        one(target, &mutate(&seeds, m), &parse)
    });
    eprintln!(
        "fuzz {target}: {} corpus files, {random} random inputs, {} mutations of the corpus",
        seeds.len(),
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// The error's message, for the "clear error" check; None when it parsed.
fn err<T, E: std::fmt::Display>(r: Result<T, E>) -> Option<String> {
    r.err().map(|e| e.to_string())
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

#[test]
fn grid_geojson() {
    fuzz("grid_geojson", |b| {
        err(GridMap::from_geojson(&text(b), Datum::Wgs84))
            .or_else(|| err(GridMap::from_geojson(&text(b), Datum::Gcj02)))
    });
}

#[test]
fn grid_kml() {
    fuzz("grid_kml", |b| {
        match gridpatrol::grid::kml_to_geojson(&text(b)) {
            Ok(v) => err(GridMap::from_geojson(&v.to_string(), Datum::Wgs84)),
            Err(e) => Some(e.to_string()),
        }
    });
}

#[test]
fn mission_file() {
    fuzz("mission_file", |b| {
        err(gridpatrol::plan::qgc::mission_file(&text(b)))
    });
}

#[test]
fn mavlink_frames() {
    // The key the corpus's signed frames carry (tests/tools/fuzz_corpus_frames.py).
    let key = gridpatrol::link::SigningKey::from_bytes(&(0..32).collect::<Vec<u8>>())
        .expect("a 32-byte key");
    let signing = gridpatrol::link::LinkSigning::new(&key, 0);
    fuzz("mavlink_frames", move |b| {
        // As a stream (TCP, serial) and as one datagram (UDP).
        let mut out = Vec::new();
        let mut stream = gridpatrol::link::FrameParser::new();
        for chunk in b.chunks(7) {
            stream.push(chunk, &mut out);
        }
        let mut datagram = gridpatrol::link::FrameParser::new();
        datagram.push(b, &mut out);
        datagram.end_datagram(&mut out);
        for p in &out {
            if let gridpatrol::link::Parsed::Frame(f) = p {
                let _ = f.decode();
                let _ = signing.accept(f);
            }
        }
        None
    });
}

#[test]
fn tlog() {
    fuzz("tlog", |b| {
        let summary = gridpatrol::replay::replay(b, |_, f, _| {
            let _ = f.header();
        });
        let _ = summary.to_string();
        None
    });
}

#[test]
fn jpeg_exif() {
    // As the pipeline takes a photo: its size read from the header and compared with the
    // camera model (here the corpus photos' 64 x 43 px) before anything decodes it, GPS
    // tags written into it, then the pixels decoded for the detector.
    fuzz("jpeg_exif", |b| {
        let size = gridpatrol::capture::jpeg_size(b);
        let tagged = err(gridpatrol::capture::exif::with_gps(
            b, 36.56, 103.68, 1860.0,
        ));
        if size == Some((64, 43)) {
            tagged.or_else(|| err(gridpatrol::detect::decode_jpeg(b)))
        } else {
            tagged
        }
    });
}

/// From the companion computer (`<file_url>.json`) and from an inference service: one
/// parser, with the entries checked.
#[test]
fn detection_json() {
    fuzz("detection_json", |b| {
        err(gridpatrol::detect::parse_detections(b))
    });
}

#[test]
fn patrol_definition() {
    let cells: Vec<String> = (1..=52).map(|i| format!("WQ-{i:02}")).collect();
    fuzz("patrol_definition", move |b| {
        let def = match gridpatrol::schedule::PatrolDef::from_toml(&text(b), "fuzz.toml") {
            Ok(d) => d,
            Err(e) => return Some(e.to_string()),
        };
        err(def.validate(Some(&cells))).or_else(|| err(def.plan_options()))
    });
}

#[test]
fn api_bodies() {
    let cells: Vec<String> = (1..=52).map(|i| format!("WQ-{i:02}")).collect();
    let district = concat!(env!("CARGO_MANIFEST_DIR"), "/missions/wenqu.geojson");
    let map =
        gridpatrol::grid::GridMap::load(std::path::Path::new(district), Datum::Wgs84).unwrap();
    fuzz("api_bodies", move |b| {
        // POST /patrols, PUT /patrols/{name}, POST /plans/preview
        let patrol = match serde_json::from_slice::<gridpatrol::schedule::PatrolDef>(b) {
            Ok(d) => err(d.validate(Some(&cells))).or_else(|| err(d.plan_options())),
            Err(e) => Some(e.to_string()),
        };
        // POST /events/{id}/actions and POST /events
        let action = err(serde_json::from_slice::<gridpatrol::api::ActionRequest>(b));
        let report = err(serde_json::from_slice::<gridpatrol::api::ManualReport>(b));
        // POST /alerts: parsed, then checked against the district.
        let alert = match serde_json::from_slice::<gridpatrol::alert::AlertRequest>(b) {
            Ok(a) => err(a.locate(&map)),
            Err(e) => Some(e.to_string()),
        };
        patrol.and(action).and(report).and(alert)
    });
}

/// The harness's own teeth: a parser that panics on an input of the corpus is caught, its
/// input saved, and the target fails naming the file.
#[test]
#[should_panic(expected = "an input panicked; saved to")]
fn a_panicking_parser_fails_its_target_with_the_input_saved() {
    fuzz("grid_geojson", |b| {
        assert!(!b.starts_with(b"{"), "a parser bug");
        None
    });
}

#[test]
fn mutations_change_the_corpus_entries() {
    let seeds = vec![b"{\"a\": [1, 2, 3]}".to_vec(), b"<kml></kml>".to_vec()];
    let mut distinct = std::collections::HashSet::new();
    for i in 0..200u16 {
        let steps: Vec<(u8, u16, u8)> = (0..4)
            .map(|k| ((i + k) as u8, i.wrapping_mul(31) + k, (i * 7 + k) as u8))
            .collect();
        distinct.insert(mutate(&seeds, &(i, steps)));
    }
    assert!(
        distinct.len() > 150,
        "{} distinct inputs of 200",
        distinct.len()
    );
}
