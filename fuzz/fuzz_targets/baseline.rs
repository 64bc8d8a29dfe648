//! A gate baseline as `photonqa check` reads it (`Baseline::parse`) and compares a run with it
//! (`gate::check`, the report's lines and its JUnit XML). A baseline that parses must read
//! back as it is after being written again (`photonqa bless` rewrites it).
//!
//! Seeds: the committed baselines (`reference-data/baselines/`) and the baseline of a run of a
//! small scenario on the reference volume, the run the target compares with.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use photonqa::gate::{Baseline, check, junit_xml};
use photonqa::scenario::tolerances::Tolerances;
use photonqa::workflow::RunSummary;
use photonqa_fuzz::{Seed, files, seed_run};

/// The run the baselines are compared with.
static RUN: LazyLock<RunSummary> = LazyLock::new(|| seed_run().1);

fn seeds() -> Vec<Seed> {
    let blessed = Baseline::from_rows("seed", "0123", &RUN.rows, &RUN.columns)
        .expect("a baseline of the run");
    let mut text = serde_json::to_string_pretty(&blessed).expect("a baseline serialises");
    text.push('\n');
    let mut seeds = files("reference-data/baselines", ".json");
    seeds.push(("seed-run.json".into(), text.into_bytes()));
    seeds
}

fuzz_target!(
    init: {
        LazyLock::force(&RUN);
        photonqa_fuzz::init(seeds);
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let path = Path::new("baseline.json");
        let Ok(baseline) = Baseline::parse(text, path) else {
            return;
        };
        let written = serde_json::to_string_pretty(&baseline).expect("a baseline serialises");
        let again = Baseline::parse(&written, path)
            .unwrap_or_else(|e| panic!("a baseline does not read back: {e}\n{written}"));
        assert!(again == baseline, "a baseline reads back changed:\n{written}");
        let report = check(&baseline, &RUN.rows, &RUN.columns, &Tolerances::default());
        let _ = report.to_string();
        let _ = junit_xml(&report);
    }
);
