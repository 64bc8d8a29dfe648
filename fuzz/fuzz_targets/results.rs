//! `OUT/results.jsonl` as `photonqa run --resume` reads it: `EarlierResults::read` (a torn
//! last line, failed rows, rows that are not results), `EarlierResults::resume` (which
//! rewrites the log without them), then `results.csv` from the rows. A row kept must read back
//! as it is after being written again: a resumed run reports the numbers the log holds.
//!
//! Seeds: the log of a run of a small scenario on the reference volume (two points, every
//! distortion metric, two analyses), as written, with a failed row, and with a torn last line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use photonqa::runner::results::{EarlierResults, PointResult, jsonl_line, write_csv};
use photonqa_fuzz::{Seed, scratch, seed_run};

fn seeds() -> Vec<Seed> {
    let (out, _) = seed_run();
    let log = std::fs::read_to_string(out.join("results.jsonl")).expect("the run's log");
    let mut rows: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("a row"))
        .collect();
    let failed = &mut rows[1];
    failed["status"] = "error".into();
    failed["error"] = "stage zstd: corrupt stream".into();
    for key in ["rate", "distortion", "science", "bounds"] {
        failed.as_object_mut().expect("a row").remove(key);
    }
    let with_failure: String = rows.iter().map(|row| format!("{row}\n")).collect();
    let torn = format!("{log}{}", &log[..log.len() / 3]);
    vec![
        ("run".into(), log.into_bytes()),
        ("failed-row".into(), with_failure.into_bytes()),
        ("torn-line".into(), torn.into_bytes()),
    ]
}

fuzz_target!(
    init: photonqa_fuzz::init(seeds),
    |data: &[u8]| {
        let out = scratch().join("out");
        std::fs::create_dir_all(&out).expect("a scratch folder");
        std::fs::write(out.join("results.jsonl"), data).expect("a scratch file");
        let Ok(earlier) = EarlierResults::read(&out, true) else {
            return;
        };
        let Ok(log) = earlier.resume(|_| Ok(())) else {
            return;
        };
        let rows = log.rows();
        for row in &rows {
            let line = jsonl_line(row);
            let again: PointResult = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a kept row does not read back: {e}\n{line}"));
            assert!(&again == row, "a kept row reads back changed:\n{line}");
        }
        let mut columns: Vec<String> = Vec::new();
        for key in rows.iter().flat_map(|r| r.distortion.keys()) {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
        let _ = write_csv(&out, &rows, &columns);
    }
);
