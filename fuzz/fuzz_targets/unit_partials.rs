//! The partial results slab units write for their merge (`photonqa unit --slabs`, `photonqa
//! merge`), decoded and merged as the merge does: a chunk's metric partial (postcard
//! `Partial`, the heart of a `measure` outcome) merged after a valid one and finished into
//! every metric; the analyses' partials (`Analyses::decode`, an `analyse` outcome) merged after
//! valid ones and finished; the prepare task's state (postcard `Prepared`).
//!
//! Input: one byte choosing the kind (modulo 3: metric partial, analyses' partial, prepared
//! state), then the bytes as the file holds them.
//!
//! Seeds: the partials of the second half of a block of the reference volume against a
//! quantised copy (every metric), of photon-count frames (every streamed analysis), and the
//! `prepare.bin` of slab units of a small scenario on the reference volume.

#![no_main]

use std::ops::Range;
use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ndarray::{ArrayD, IxDyn};
use photonqa::analysis::{Context, Slabs};
use photonqa::data::{DType, IntoNdArray, NdArray, rows_with_halo};
use photonqa::metrics::comparison::{CompareSpec, DataFacts, Partial, unmet};
use photonqa::metrics::registry as metric_registry;
use photonqa::metrics::ssim::SsimWindow;
use photonqa::runner::science::{Analyses, Fits};
use photonqa::runner::slabs::{self, Prepared};
use photonqa::scenario::Scenario;
use photonqa::stats::histogram::{Binning, Histogram};
use photonqa_fuzz::{Seed, reference_block, scratch, seed_scenario};

/// Rows of the first partial; the fuzzed one covers the rest.
const CUT: usize = 4;

/// The metric partials of a block of the reference volume (uint8) against a quantised copy.
struct Metrics {
    spec: CompareSpec,
    names: Vec<&'static str>,
    first: Partial,
    second: Partial,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let shape = [8, 16, 16];
    // Integers: the KS test's value histograms have a bin per value.
    let original = reference_block(&shape, DType::Uint8);
    let decoded = original
        .to_f64()
        .mapv(|v| ((v / 4.0).round() * 4.0) as u8)
        .into_nd();
    let values = original.to_f64();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let window = SsimWindow::Gaussian;
    let names: Vec<&'static str> = metric_registry::names()
        .into_iter()
        .filter(|name| unmet(name, &shape, Some(hi - lo), window).is_none())
        .collect();
    let facts = DataFacts {
        shape: &shape,
        range: (lo, hi),
        data_range: hi - lo,
        dtypes: (DType::Uint8, DType::Uint8),
    };
    let spec = CompareSpec::new(&names, facts, 1e-3 * (hi - lo), window).expect("a comparison");
    let partial = |core: Range<usize>| {
        let held = rows_with_halo(&core, spec.halo(), shape[0]);
        let x = original.slice_rows(held.clone());
        let y = decoded.slice_rows(held.clone());
        spec.partial(&x, &y, held, core).expect("a metric partial")
    };
    Metrics {
        first: partial(0..CUT),
        second: partial(CUT..shape[0]),
        spec,
        names,
    }
});

/// Every streamed analysis prepared on photon-count frames, fitted on their decoded copy.
struct Science {
    analyses: Analyses,
    fits: Fits,
    shape: Vec<usize>,
    /// The encoded partials of rows `..CUT` and `CUT..`.
    first: Vec<u8>,
    second: Vec<u8>,
}

/// The analyses of `science.rs`'s tests (all but `command`, which has no partial), XPCS's
/// correlator shortened to fit the frames.
const ANALYSES: &str = "[[analysis]]\nkind = \"porosity\"\nmethod = \"value\"\nvalue = 2.0\n\
    [[analysis]]\nkind = \"segmentation\"\n\
    [[analysis]]\nkind = \"counting\"\n\
    [[analysis]]\nkind = \"saxs\"\nbeam_x = 7.5\nbeam_y = 7.5\npixel_size = 1e-4\n\
    distance = 1.0\nwavelength = 1e-10\nq_bins = 6\n\
    [[analysis]]\nkind = \"xpcs\"\nq_rings = 2\nr_max = 5.0\nper_level = 4\n\
    [[analysis]]\nkind = \"sx\"\n";

/// scikit-image's histogram of `array` over its range, as a run's first pass makes it.
fn histogram(array: &NdArray) -> Result<Histogram, String> {
    let values = array.to_f64();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let binning = Binning::new(array.dtype(), lo, hi)?;
    let mut counts = binning.zeros();
    binning.accumulate(array, &mut counts);
    Ok(binning.finish(counts))
}

static SCIENCE: LazyLock<Science> = LazyLock::new(|| {
    let shape = vec![8, 16, 16];
    // Counts around a ring with pores and a bright spot per frame; the decoded copy is off by
    // one count here and there.
    let original = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let (t, y, x) = (ix[0] as f64, ix[1] as f64 - 7.5, ix[2] as f64 - 7.5);
        let r = (y * y + x * x).sqrt();
        let spot =
            (y - 5.0 * (0.7 * t).sin()).abs() < 1.0 && (x - 5.0 * (0.7 * t).cos()).abs() < 1.0;
        let pore = (ix[1] / 3 + ix[2] / 4 + ix[0] / 5) % 4 == 0;
        let mean = if spot {
            400.0
        } else if pore {
            0.0
        } else {
            (20.0 * (1.5 + (0.7 * r + 0.05 * t).cos()) / (1.0 + 0.1 * r)).round()
        };
        mean as f32
    });
    let decoded = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let v = original[&ix];
        match (ix[0] * 7 + ix[1] * 3 + ix[2]) % 8 {
            0 => (v - 1.0).max(0.0),
            1 => v + 1.0,
            _ => v,
        }
    })
    .into_nd();
    let original = original.into_nd();
    let text = format!(
        "[scenario]\nname = \"science\"\n[input]\nsource = \"v.npy\"\n[[pipeline]]\nstage = \"zstd\"\n{ANALYSES}"
    );
    let specs = Scenario::parse(&text, Path::new("science.toml"))
        .expect("valid analyses")
        .analyses;
    let analyses = {
        let mut context = Context::new(&shape, Path::new("."), || histogram(&original));
        Analyses::prepare(&specs, &mut context).expect("prepared analyses")
    };
    let decoded_histogram = analyses
        .needs_histogram()
        .then(|| histogram(&decoded).expect("a histogram"));
    let fits = analyses
        .fit(decoded_histogram.as_ref())
        .expect("fitted analyses");
    let encoded = |core: Range<usize>| {
        let held = rows_with_halo(&core, analyses.halo(), shape[0]);
        let (x, y) = (
            original.slice_rows(held.clone()),
            decoded.slice_rows(held.clone()),
        );
        let slabs = Slabs {
            original: &x,
            decoded: &y,
            held,
            core,
            shape: &shape,
        };
        let partial = analyses.partial(&fits, &slabs).expect("a partial");
        analyses.encode(&partial).expect("an encoded partial")
    };
    Science {
        first: encoded(0..CUT),
        second: encoded(CUT..shape[0]),
        analyses,
        fits,
        shape,
    }
});

/// The `prepare.bin` of slab units of the seed run's scenario.
fn prepared_seed() -> Vec<u8> {
    let scenario = seed_scenario();
    let out = scratch().join("seed-units");
    slabs::prepare(&scenario, &out, 2, (1 << 30, Some(1))).expect("prepared slab units");
    std::fs::read(out.join("units").join("prepare.bin")).expect("prepare.bin")
}

fn seeds() -> Vec<Seed> {
    let tagged = |kind: u8, bytes: Vec<u8>| [vec![kind], bytes].concat();
    let metric = postcard::to_stdvec(&METRICS.second).expect("a partial serialises");
    vec![
        ("metric-partial".into(), tagged(0, metric)),
        ("analyses-partial".into(), tagged(1, SCIENCE.second.clone())),
        ("prepared".into(), tagged(2, prepared_seed())),
    ]
}

fuzz_target!(
    init: {
        LazyLock::force(&METRICS);
        LazyLock::force(&SCIENCE);
        photonqa_fuzz::init(seeds);
    },
    |data: &[u8]| {
        let Some((&kind, bytes)) = data.split_first() else {
            return;
        };
        match kind % 3 {
            0 => {
                let Ok(second) = postcard::from_bytes::<Partial>(bytes) else {
                    return;
                };
                let metrics = &*METRICS;
                let mut total = metrics.first.clone();
                if total.merge(second).is_ok() {
                    let _ = metrics.spec.finish(&total, &metrics.names);
                }
            }
            1 => {
                let science = &*SCIENCE;
                let Ok(second) = science.analyses.decode(bytes) else {
                    return;
                };
                let first = science.analyses.decode(&science.first).expect("a valid partial");
                if let Ok(total) = science.analyses.merge([first, second]) {
                    let _ = science.analyses.finish(&science.fits, total, &science.shape);
                }
            }
            _ => {
                let _ = postcard::from_bytes::<Prepared>(bytes);
            }
        }
    }
);
