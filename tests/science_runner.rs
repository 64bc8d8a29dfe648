//! The science analyses through the runner: thresholds fitted on the original and on every
//! point's decoded data, partials streamed in chunks with halos. The results must equal one
//! pass over the whole arrays, exactly (they are counts and functions of counts), whatever the
//! chunking and the thread count.

mod common;

use std::path::Path;

use common::{quantized, read_reference_volume, reference_volume, run_first_row};
use photonqa::analysis::{Context, Slabs};
use photonqa::data::NdArray;
use photonqa::runner::passes::min_max;
use photonqa::runner::science::Analyses;
use photonqa::scenario::Scenario;
use photonqa::stats::histogram::{Binning, Histogram};
use serde_json::Value;

fn scenario(chunk_slices: usize) -> String {
    format!(
        "[scenario]\nname = \"science\"\nchunk_slices = {chunk_slices}\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"quantize\"\nrange = [-0.2, 1.1]\nbits = 4\n\
         [[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [\"mse\"]\n\
         [[analysis]]\nkind = \"segmentation\"\n\
         [[analysis]]\nkind = \"segmentation\"\nmethod = \"multiotsu\"\nclasses = 3\n\
         [[analysis]]\nkind = \"porosity\"\nmethod = \"multiotsu\"\nconnectivity = \"full\"\n\
         [[analysis]]\nkind = \"porosity\"\nmethod = \"value\"\nvalue = 0.3\n",
        reference_volume()
    )
}

fn run(dir: &Path, chunk_slices: usize, threads: &str) -> Value {
    let name = format!("c{chunk_slices}-t{threads}");
    let row = run_first_row(dir, &name, &scenario(chunk_slices), threads);
    row["science"].clone()
}

/// scikit-image's 256-bin histogram of a whole array.
fn histogram(a: &NdArray) -> Histogram {
    let (lo, hi, _) = min_max(a);
    let binning = Binning::new(a.dtype(), lo, hi).unwrap();
    let mut counts = binning.zeros();
    binning.accumulate(a, &mut counts);
    binning.finish(counts)
}

#[test]
fn streamed_analyses_equal_the_whole_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let original = read_reference_volume();
    let decoded = quantized(&original, 4);
    let parsed = Scenario::parse(&scenario(3), Path::new("s.toml")).unwrap();
    let shape = original.shape().to_vec();
    let mut context = Context::new(&shape, Path::new("."), || Ok(histogram(&original)));
    let analyses = Analyses::prepare(&parsed.analyses, &mut context).unwrap();
    let fits = analyses.fit(Some(&histogram(&decoded))).unwrap();
    let slabs = Slabs::whole(&original, &decoded, &shape);
    let whole = analyses.partial(&fits, &slabs).unwrap();
    let whole = Value::Object(analyses.finish(&fits, whole, &shape).unwrap());

    // Chunks of 3 rows: the segmentation's halo of 2 rows and the pores' border rows cross
    // chunks; two threads change the grouping of the chunks.
    let small = run(dir.path(), 3, "2");
    assert_eq!(small, whole, "3-row chunks vs the whole arrays");
    assert_eq!(
        run(dir.path(), 3, "1"),
        small,
        "the thread count changed a result"
    );
    assert_eq!(
        run(dir.path(), 40, "2"),
        whole,
        "40-row chunks vs the whole arrays"
    );

    // Labels: repeated kinds are numbered by their position.
    let keys: Vec<&String> = small.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "1:segmentation",
            "2:segmentation",
            "3:porosity",
            "4:porosity"
        ]
    );
    // The quantiser moves the decoded Otsu threshold and changes the pores: the numbers must
    // show it, not trivially equal ones.
    let porosity = &small["3:porosity"];
    assert!(porosity["pore_count_original"].as_u64().unwrap() > 0);
    assert_eq!(porosity["connectivity"], "full");
    let dice = small["1:segmentation"]["dice_foreground"].as_f64().unwrap();
    assert!(dice > 0.5 && dice < 1.0, "dice {dice}");
}
