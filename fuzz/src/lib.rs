//! What photonqa's fuzz targets share: a cap on single allocations, a scratch folder, and the
//! mode that writes a target's seed corpus.
//!
//! Built with `cargo fuzz build -s none` (stable Rust, no sanitizer), libFuzzer sees panics
//! (turned into aborts by `libfuzzer-sys`), crashes and timeouts, but not a decoder that
//! believes a forged size field and allocates gigabytes it never touches: without a sanitizer's
//! allocator its `-malloc_limit_mb` does nothing. [`Capped`], the global allocator of every
//! target, aborts instead on any single allocation above [`ALLOCATION_LIMIT`] once the target
//! is initialised, so libFuzzer reports it as a crash with its input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use photonqa::data::{DType, Element, IntoNdArray, NdArray, SourceSpec};
use photonqa::runner::RunOptions;
use photonqa::scenario::Scenario;
use photonqa::with_dtype;
use photonqa::workflow::{RunSummary, run};

/// Largest single allocation a target may make on hostile input. The inputs are at most a few
/// tens of kilobytes and the chunks a few kilobytes, so much more is a size taken from the
/// input on trust; the limit is the most a decoder's format bounds one to: a Pcodec chunk may
/// declare a dictionary of up to 2^25 values of 8 bytes, which pco allocates before reading it.
pub const ALLOCATION_LIMIT: usize = 256 << 20;

/// Environment variable naming a folder: a target started with it writes its seeds there and
/// exits (see `fuzz/make_corpus.sh`).
pub const SEEDS_ENV: &str = "PHOTONQA_FUZZ_SEEDS";

/// Whether [`Capped`] enforces [`ALLOCATION_LIMIT`] (from [`init`] on: building the seeds and
/// the targets' fixtures may allocate more).
static ARMED: AtomicBool = AtomicBool::new(false);

/// The system allocator, aborting on a single allocation above [`ALLOCATION_LIMIT`].
pub struct Capped;

impl Capped {
    fn check(size: usize) {
        if size > ALLOCATION_LIMIT && ARMED.swap(false, Ordering::Relaxed) {
            // Disarmed first: printing allocates.
            eprintln!(
                "photonqa-fuzz: one allocation of {size} bytes (limit {ALLOCATION_LIMIT}): a size taken from the input on trust"
            );
            std::process::abort();
        }
    }
}

// SAFETY: every call is passed to `System` unchanged; `check` only reads the size.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Capped::check(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Capped::check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Capped::check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Capped = Capped;

/// A seed: its file name in the corpus and its bytes.
pub type Seed = (String, Vec<u8>);

/// Starts a target: with [`SEEDS_ENV`] set, writes `seeds()` into that folder (replacing its
/// files) and exits; otherwise arms the allocation cap. Call it from the `init` block of
/// `fuzz_target!`, after building any fixtures.
pub fn init(seeds: impl FnOnce() -> Vec<Seed>) {
    if let Some(dir) = std::env::var_os(SEEDS_ENV) {
        let dir = PathBuf::from(dir);
        let written = (|| -> std::io::Result<usize> {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            let seeds = seeds();
            for (name, bytes) in &seeds {
                std::fs::write(dir.join(name), bytes)?;
            }
            Ok(seeds.len())
        })();
        match written {
            Ok(n) => {
                eprintln!("photonqa-fuzz: wrote {n} seeds into {}", dir.display());
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!(
                    "photonqa-fuzz: cannot write seeds into {}: {e}",
                    dir.display()
                );
                std::process::exit(2);
            }
        }
    }
    ARMED.store(true, Ordering::Relaxed);
}

/// A folder of this process for the files a target writes (in memory under `/dev/shm` when
/// there is one), removed when the process exits normally.
pub fn scratch() -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!("photonqa-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        extern "C" fn remove() {
            if let Some(dir) = SCRATCH.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        // SAFETY: `remove` is a plain function that only touches the finished `SCRATCH`.
        unsafe { libc::atexit(remove) };
        dir
    })
}

/// A file of the repository (`reference-data/...`, `scenarios/...`), for seeds.
pub fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The seeds of a folder of the repository: every file whose name ends in `extension`, named
/// after it.
pub fn files(folder: &str, extension: &str) -> Vec<Seed> {
    let mut seeds: Vec<Seed> = std::fs::read_dir(repository(folder))
        .unwrap_or_else(|e| panic!("{folder}: {e}"))
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.to_string_lossy().ends_with(extension))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("a readable file"))
        })
        .collect();
    seeds.sort();
    seeds
}

/// A block of `shape` (rank 2 or 3) from the middle of the reference volume
/// (`reference-data/porous-tomo.h5::/volume`, float32 in about [-0.1, 1]) as `dtype`: floats as
/// they are, integers the values times 100 (which every integer type holds, but for the
/// negative ones in unsigned types, saturated to 0).
pub fn reference_block(shape: &[usize], dtype: DType) -> NdArray {
    let path = repository("reference-data/porous-tomo.h5");
    let source = SourceSpec::Hdf5 {
        file: path,
        dataset: "/volume".into(),
    }
    .open()
    .expect("the reference volume");
    let [rows, height, width] = source.shape() else {
        panic!("the reference volume is 3-D");
    };
    let planes = if shape.len() == 3 { shape[0] } else { 1 };
    let first = rows / 2;
    let slab = source
        .read_slab(first..first + planes)
        .expect("rows of the reference volume")
        .to_f64();
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let (top, left) = ((height - h) / 2, (width - w) / 2);
    let block = slab.slice(ndarray::s![.., top..top + h, left..left + w]);
    let block = block
        .to_shape(shape)
        .expect("the block has the shape's values")
        .to_owned();
    with_dtype!(dtype, T => {
        let scale = if dtype.is_float() { 1.0 } else { 100.0 };
        block.mapv(|v| T::from_f64(v * scale)).into_nd()
    })
}

/// A small scenario on the reference volume: two points, quantised then zstd at levels 1
/// and 3, every distortion metric, two analyses.
pub fn seed_scenario() -> Scenario {
    let volume = repository("reference-data/porous-tomo.h5");
    let text = format!(
        "[scenario]\nname = \"seed\"\nchunk_slices = 16\n[input]\nsource = \"{}::/volume\"\n\
         [[pipeline]]\nstage = \"quantize\"\nrange = [-0.2, 1.1]\n\
         [[pipeline]]\nstage = \"zstd\"\nlevel = {{ sweep = [1, 3] }}\n\
         [[analysis]]\nkind = \"porosity\"\nmethod = \"otsu\"\n\
         [[analysis]]\nkind = \"segmentation\"\n",
        volume.display()
    );
    Scenario::parse(&text, &scratch().join("seed.toml")).expect("a valid scenario")
}

/// A run of [`seed_scenario`] into `scratch()/seed-run`: the rows and logs the seeds of the
/// results and baselines start from.
pub fn seed_run() -> (PathBuf, RunSummary) {
    let out = scratch().join("seed-run");
    let options = RunOptions {
        threads: Some(1),
        ..RunOptions::new(out.clone())
    };
    let summary = run(&seed_scenario(), &options).expect("a run of the seed scenario");
    (out, summary)
}
