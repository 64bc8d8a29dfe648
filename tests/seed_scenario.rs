//! The seed scenario on the committed reference data: Otsu zero-below threshold, float32 ->
//! uint8 quantisation (4, 6, 8 bits), deflate levels 1, 6, 9.
//!
//! Reference values marked "scikit-image" were computed independently with scikit-image 0.26
//! and NumPy 2.4 on reference-data/porous-tomo.h5:
//! `t = threshold_otsu(a)`; `b = np.where(a > t, a, 0)`; quantisation over `[b.min(), b.max()]`
//! as `q = clip(round((b - lo) * L / (hi - lo)), 0, L)`, `d = float32(lo + q (hi - lo) / L)`;
//! `mse = mean((d - a)^2)`; `peak_signal_noise_ratio(a, d, data_range=a.max() - a.min())`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{BIN, assert_ok, comparable, differ, text};

fn scenario_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed-otsu-uint8-zip.toml")
}

fn reference_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-data/porous-tomo.h5")
}

/// Otsu's threshold of the reference volume (scikit-image `threshold_otsu`, a float32 value).
const SKIMAGE_THRESHOLD: f64 = 0.2911255955696106;
/// The largest value of the reference volume at or below that threshold (NumPy).
const LARGEST_ZEROED: f64 = 0.29112446308135986;
/// The largest value of the reference volume (NumPy).
const VOLUME_MAX: f64 = 1.0037375688552856;
/// MSE of the decoded volume for 4, 6 and 8 bits (NumPy, float64 mean).
const SKIMAGE_MSE: [(i64, f64); 3] = [
    (4, 0.0041324154219190175),
    (6, 0.0039602677371362565),
    (8, 0.0039506806053016185),
];
/// PSNR for 4, 6 and 8 bits (scikit-image `peak_signal_noise_ratio`).
const SKIMAGE_PSNR: [(i64, f64); 3] = [
    (4, 24.736504100597273),
    (6, 24.92129835945442),
    (8, 24.931824633457936),
];

/// Compressed sizes for (bits, level): Python's `zlib.compress(q.tobytes(), level)` (zlib 1.2.13,
/// the system zlib photonqa links) of the quantised uint8 volume, which is one chunk here.
const ZLIB_BYTES: [((i64, i64), u64); 9] = [
    ((4, 1), 239715),
    ((4, 6), 190645),
    ((4, 9), 180350),
    ((6, 1), 370478),
    ((6, 6), 335391),
    ((6, 9), 331706),
    ((8, 1), 482841),
    ((8, 6), 449037),
    ((8, 9), 445905),
];

const BITS: [i64; 3] = [4, 6, 8];
const LEVELS: [i64; 3] = [1, 6, 9];

fn run_command(out: &Path, options: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .arg(scenario_path())
        .arg("--out")
        .arg(out)
        .args(options);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// A row of OUT/results.jsonl: the parsed JSON and the line as written.
struct Row {
    json: Value,
    line: String,
}

/// Rows of OUT/results.jsonl keyed by (bits, level).
fn rows(out: &Path) -> BTreeMap<(i64, i64), Row> {
    let log = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let mut rows = BTreeMap::new();
    for line in log.lines() {
        let row: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid row ({e}): {line}"));
        let params = row["params"].as_object().expect("params");
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["quantize.bits", "deflate.level"],
            "swept parameters of {line}"
        );
        let key = (
            params["quantize.bits"].as_i64().unwrap(),
            params["deflate.level"].as_i64().unwrap(),
        );
        let row = Row {
            json: row,
            line: line.to_string(),
        };
        assert!(
            rows.insert(key, row).is_none(),
            "point {key:?} twice in results.jsonl"
        );
    }
    rows
}

/// The number written after `"key":` in a JSON line, parsed exactly (serde_json's own float
/// parser, without its `float_roundtrip` feature, can be off by one ULP).
fn number(line: &str, key: &str) -> f64 {
    let tag = format!("\"{key}\":");
    assert_eq!(line.matches(&tag).count(), 1, "{tag} in {line}");
    let rest = &line[line.find(&tag).unwrap() + tag.len()..];
    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {:?} is not a number ({e})", &rest[..end]))
}

/// The two numbers of `"key":[lo,hi]` in a JSON line, parsed exactly.
fn pair(line: &str, key: &str) -> [f64; 2] {
    let tag = format!("\"{key}\":[");
    assert_eq!(line.matches(&tag).count(), 1, "{tag} in {line}");
    let rest = &line[line.find(&tag).unwrap() + tag.len()..];
    let inner = &rest[..rest.find(']').unwrap()];
    let v: Vec<f64> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    [v[0], v[1]]
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The largest value of the reference volume that is <= `t`, read straight from the file.
fn largest_at_or_below(t: f64) -> f64 {
    let volume = photonqa::data::hdf5io::read_hdf5(&reference_path(), "/volume")
        .expect("read reference data");
    volume
        .to_f64()
        .iter()
        .copied()
        .filter(|&v| v <= t)
        .fold(f64::NEG_INFINITY, f64::max)
}

#[test]
fn seed_scenario_rates_distortions_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = run_command(&out, &[]).output().unwrap();
    assert_ok(&output, "photonqa run seed scenario");
    let rows = rows(&out);

    // 9 rows: {4, 6, 8} x {1, 6, 9}, all measured, indices in sweep order (level fastest).
    let expected: BTreeSet<(i64, i64)> = BITS
        .iter()
        .flat_map(|&b| LEVELS.iter().map(move |&l| (b, l)))
        .collect();
    let actual: BTreeSet<(i64, i64)> = rows.keys().copied().collect();
    if rows.len() != 9 || actual != expected {
        differ(
            "working points",
            &format!("{expected:?}"),
            &format!("{actual:?}"),
        );
    }
    for (bi, &b) in BITS.iter().enumerate() {
        for (li, &l) in LEVELS.iter().enumerate() {
            let row = &rows[&(b, l)].json;
            assert_eq!(row["status"], "ok", "{row}");
            assert!(row.get("error").is_none(), "{row}");
            assert_eq!(
                row["index"].as_u64(),
                Some((bi * 3 + li) as u64),
                "index of {b} bits, level {l}"
            );
            assert!(
                row["point_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("wp-") && id.len() == 13),
                "{row}"
            );
        }
    }
    let ids: BTreeSet<&str> = rows
        .values()
        .map(|r| r.json["point_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 9, "point ids are not distinct");

    // Rate.
    let values = 64.0 * 128.0 * 128.0;
    for ((b, l), row) in &rows {
        let line = &row.line;
        let original = number(line, "original_bytes");
        let compressed = number(line, "compressed_bytes");
        let ratio = number(line, "ratio");
        assert_eq!(
            original,
            values * 4.0,
            "original_bytes ({b} bits, level {l})"
        );
        assert_eq!(ratio, original / compressed, "ratio ({b} bits, level {l})");
        assert_eq!(
            number(line, "bits_per_value"),
            8.0 * compressed / values,
            "bits_per_value"
        );
        let (_, zlib) = ZLIB_BYTES.iter().find(|(k, _)| *k == (*b, *l)).unwrap();
        assert_eq!(
            compressed, *zlib as f64,
            "compressed_bytes at {b} bits, level {l}; zlib.compress gives {zlib}"
        );
        assert!(
            ratio > 5.0 && ratio < 60.0,
            "ratio {ratio} at {b} bits, level {l} outside (5, 60)"
        );
        assert!(
            number(line, "encode_mb_s") > 0.0 && number(line, "decode_mb_s") > 0.0,
            "{line}"
        );
    }
    for b in BITS {
        let (r1, r6) = (
            number(&rows[&(b, 1)].line, "ratio"),
            number(&rows[&(b, 6)].line, "ratio"),
        );
        assert!(
            r6 > r1,
            "{b} bits: ratio at level 6 ({r6}) is not above level 1 ({r1})"
        );
    }

    // Distortion: deflate is lossless, so it depends on the bits only.
    for l in LEVELS {
        let (m4, m8) = (
            number(&rows[&(4, l)].line, "mse"),
            number(&rows[&(8, l)].line, "mse"),
        );
        assert!(
            m4 > m8,
            "level {l}: mse at 4 bits ({m4}) is not above 8 bits ({m8})"
        );
    }
    for b in BITS {
        let first = &rows[&(b, 1)].json["distortion"];
        for l in LEVELS {
            assert_eq!(
                &rows[&(b, l)].json["distortion"],
                first,
                "{b} bits: distortion changes with the deflate level"
            );
        }
    }
    let mut psnrs = Vec::new();
    for ((b, l), row) in &rows {
        let line = &row.line;
        let keys: Vec<&str> = row.json["distortion"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "mse",
                "rmse",
                "psnr",
                "max_abs_error",
                "ssim",
                "ssim_detail"
            ],
            "metrics in scenario order"
        );
        let (mse, rmse, psnr, max_abs) = (
            number(line, "mse"),
            number(line, "rmse"),
            number(line, "psnr"),
            number(line, "max_abs_error"),
        );
        assert!(
            psnr > 20.0 && psnr < 40.0,
            "psnr {psnr} dB at {b} bits, level {l} outside (20, 40)"
        );
        assert_eq!(rmse, mse.sqrt(), "rmse");
        let (_, reference_mse) = SKIMAGE_MSE.iter().find(|(bits, _)| bits == b).unwrap();
        assert!(
            (mse / reference_mse - 1.0).abs() < 1e-9,
            "{b} bits: mse {mse}, NumPy gives {reference_mse}"
        );
        let (_, reference_psnr) = SKIMAGE_PSNR.iter().find(|(bits, _)| bits == b).unwrap();
        assert!(
            (psnr - reference_psnr).abs() < 1e-8,
            "{b} bits: psnr {psnr}, scikit-image gives {reference_psnr}"
        );
        psnrs.push(psnr);

        // The fitted Otsu threshold (scikit-image's to the bit) and the quantisation range.
        let fitted = row.json["fitted"].as_array().expect("fitted");
        assert_eq!(fitted.len(), 2, "{line}");
        assert!(
            fitted[0].get("threshold").is_some() && fitted[1].get("range").is_some(),
            "{line}"
        );
        let t = number(line, "threshold");
        assert_eq!(
            t, SKIMAGE_THRESHOLD,
            "Otsu threshold; scikit-image gives {SKIMAGE_THRESHOLD}"
        );
        let [qlo, qhi] = pair(line, "range");
        assert_eq!(
            qlo, 0.0,
            "quantize lo: everything at or below the threshold is 0"
        );
        assert_eq!(qhi, VOLUME_MAX, "quantize hi: the largest value");

        // The largest error is the largest zeroed value, just below the threshold: the values
        // above it are off by at most half a quantisation step (< 0.034 at 4 bits). On this
        // volume the largest value <= t lies 1.13e-6 below t (0.29112446 vs 0.29112560).
        assert!(
            t - max_abs >= 0.0 && t - max_abs < 2e-6,
            "max_abs_error {max_abs} vs threshold {t}"
        );
        assert_eq!(
            max_abs, LARGEST_ZEROED,
            "max_abs_error; NumPy gives {LARGEST_ZEROED}"
        );
    }
    assert_eq!(
        largest_at_or_below(SKIMAGE_THRESHOLD),
        LARGEST_ZEROED,
        "largest zeroed value read from the file"
    );
    assert!(psnrs.iter().all(|p| p.is_finite()));

    // The printed table fits a 120-column terminal: two header lines (dotted names folded after
    // their last dot), then one line per point with the swept parameters, the ratio, the limited
    // columns, the bound check and the verdict.
    let stdout = text(&output.stdout);
    let table: Vec<&str> = stdout.lines().take_while(|l| !l.is_empty()).collect();
    let header: Vec<Vec<&str>> = table
        .iter()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected_header = [
        vec!["quantize.", "deflate.", "segmentation.", "porosity."],
        vec![
            "point",
            "bits",
            "level",
            "ratio",
            "dice_foreground",
            "porosity_abs_change",
            "psnr",
            "bound",
            "status",
        ],
    ];
    if header != expected_header || table.len() != 11 {
        differ(
            "printed table: 2 header lines and 9 point lines",
            &expected_header.map(|l| l.join("  ")).join("\n"),
            &stdout,
        );
    }
    for line in &table {
        assert!(
            line.chars().count() <= 120,
            "wider than 120 columns: {line}"
        );
    }
    // The folded names stand above the columns they name.
    for name in [
        "segmentation.dice_foreground",
        "porosity.porosity_abs_change",
    ] {
        let (prefix, rest) = name.rsplit_once('.').unwrap();
        assert_eq!(
            table[0].find(&format!("{prefix}.")),
            table[1].find(&format!(" {rest}")).map(|at| at + 1),
            "{name}: {stdout}"
        );
    }
    let table = &table[1..];
    for line in &table[1..] {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(
            // Every point meets the limits: the two phases survive the threshold exactly.
            ids.contains(cells[0]) && matches!(cells.last(), Some(&"pass" | &"chosen")),
            "table line: {line}"
        );
        let key = (
            cells[1].parse::<i64>().unwrap(),
            cells[2].parse::<i64>().unwrap(),
        );
        assert_eq!(
            rows[&key].json["point_id"].as_str(),
            Some(cells[0]),
            "table line: {line}"
        );
    }
    let chosen: Vec<&&str> = table[1..]
        .iter()
        .filter(|l| l.ends_with("chosen"))
        .collect();
    assert!(
        chosen.len() == 1
            && chosen[0].starts_with(rows[&(4, 9)].json["point_id"].as_str().unwrap()),
        "one chosen point, 4 bits at level 9: {stdout}"
    );
    assert!(
        stdout.contains("9 working points measured, 0 already in"),
        "{stdout}"
    );

    // --wide prints every column, one header line; the compact table's cells are its cells.
    let wide = run_command(&out, &["--resume", "--wide"]).output().unwrap();
    assert_ok(&wide, "run --resume --wide");
    let wide = text(&wide.stdout);
    let wide: Vec<Vec<&str>> = wide
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected_wide = [
        "point",
        "quantize.bits",
        "deflate.level",
        "ratio",
        "bits/value",
        "mse",
        "rmse",
        "psnr",
        "max_abs_error",
        "ssim",
        "segmentation.threshold_shift_max",
        "segmentation.dice_foreground",
        "segmentation.fraction_change_max",
        "segmentation.boundary_f1",
        "porosity.porosity_abs_change",
        "porosity.pore_count_change",
        "porosity.diameter_ks_statistic",
        "porosity.specific_surface_change",
        "bound",
        "status",
    ];
    assert!(
        wide[0] == expected_wide && wide.len() == 10,
        "--wide table: {wide:?}"
    );
    let compact_columns = [
        "point",
        "quantize.bits",
        "deflate.level",
        "ratio",
        "segmentation.dice_foreground",
        "porosity.porosity_abs_change",
        "psnr",
        "bound",
        "status",
    ];
    for line in &table[1..] {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let full = wide
            .iter()
            .find(|w| w[0] == cells[0])
            .expect("the point in --wide");
        for (column, cell) in compact_columns.iter().zip(&cells) {
            let at = expected_wide.iter().position(|c| c == column).unwrap();
            assert_eq!(full[at], *cell, "{column} of {}", cells[0]);
        }
    }

    // The recommendation: every point meets the limits, so the largest ratio wins (4 bits,
    // level 9), and the table's last line says so.
    let recommendation: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("recommendation.json")).unwrap())
            .unwrap();
    let best = rows
        .values()
        .max_by(|a, b| {
            a.json["rate"]["ratio"]
                .as_f64()
                .unwrap()
                .total_cmp(&b.json["rate"]["ratio"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(recommendation["chosen"]["point_id"], best.json["point_id"]);
    assert_eq!(rows[&(4, 9)].json["point_id"], best.json["point_id"]);
    assert_eq!(
        recommendation["counts"],
        serde_json::json!({"passing": 9, "total": 9})
    );
    let why = recommendation["why"].as_str().unwrap();
    // The answer, then where the report is.
    let last: Vec<&str> = stdout.trim_end().lines().rev().take(2).collect();
    let report = out.join("report.html");
    assert_eq!(
        last,
        [format!("report: {}", report.display()).as_str(), why],
        "{stdout}"
    );
    assert!(report.is_file() && out.join("summary.md").is_file());
    assert_eq!(
        text(&output.stderr),
        "",
        "a successful run prints nothing on stderr (no TTY)"
    );

    // results.csv: header and 9 rows.
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10, "results.csv:\n{csv}");
    assert!(
        csv.starts_with("point_id,index,status,quantize.bits,deflate.level,"),
        "{csv}"
    );

    // Provenance, the same in every row.
    let provenance = &rows[&(4, 1)].json["provenance"];
    for row in rows.values() {
        assert_eq!(
            &row.json["provenance"], provenance,
            "provenance differs between rows"
        );
    }
    assert_eq!(provenance["photonqa_version"], env!("CARGO_PKG_VERSION"));
    let codecs = provenance["codecs"].as_object().expect("codecs");
    for codec in ["zstd", "flate2", "libhdf5"] {
        let version = codecs.get(codec).and_then(Value::as_str).unwrap_or("");
        assert!(
            !version.is_empty()
                && version.chars().next().unwrap().is_ascii_digit()
                && version.contains('.'),
            "codec version of {codec}: {version:?} in {provenance}"
        );
    }
    let scenario_hash = provenance["scenario_hash"].as_str().unwrap();
    assert!(is_hex64(scenario_hash), "scenario_hash {scenario_hash}");
    let file_hash = blake3::hash(&std::fs::read(scenario_path()).unwrap())
        .to_hex()
        .to_string();
    assert_eq!(
        scenario_hash, file_hash,
        "scenario_hash is not the BLAKE3 of the scenario file"
    );
    let input_hash = provenance["input_hash"].as_str().unwrap();
    assert!(is_hex64(input_hash), "input_hash {input_hash}");
    assert_ne!(input_hash, scenario_hash);
    assert_eq!(provenance["input_shape"], serde_json::json!([64, 128, 128]));
    assert_eq!(provenance["input_dtype"], "float32");
    assert_eq!(provenance["scenario"], "seed-otsu-uint8-zip");
    assert!(
        provenance["input"]
            .as_str()
            .unwrap()
            .ends_with("porous-tomo.h5::/volume"),
        "{provenance}"
    );
}

fn assert_same_rows(what: &str, a: &BTreeMap<(i64, i64), Row>, b: &BTreeMap<(i64, i64), Row>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: working points"
    );
    for (key, row) in a {
        let (expected, actual) = (comparable(&row.line), comparable(&b[key].line));
        if expected != actual {
            differ(
                &format!("{what}: row {key:?} differs (timing fields excepted)"),
                &expected,
                &actual,
            );
        }
    }
}

/// The same rows, bit for bit, from runs on 1 and 2 threads, with the sharing of decoded data
/// and stages between points and with every point measured alone; the shared runs say which
/// points shared whose decoded data (the three deflate levels of a bit depth decode alike).
#[test]
fn seed_scenario_is_deterministic_across_runs_thread_counts_and_sharing() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = ["two-a", "two-b", "one", "alone-two", "alone-one"].map(|n| dir.path().join(n));
    // Five runs, three at a time: --threads 2 twice and 1 once, then each point alone
    // (--no-share) on 2 threads and on 1.
    let shared: Vec<_> = [("2", &dirs[0]), ("2", &dirs[1]), ("1", &dirs[2])]
        .into_iter()
        .map(|(t, d)| run_command(d, &["--threads", t]).spawn().unwrap())
        .collect();
    for (child, d) in shared.into_iter().zip(&dirs) {
        assert_ok(
            &child.wait_with_output().unwrap(),
            &format!("run into {}", d.display()),
        );
    }
    let alone: Vec<_> = [("2", &dirs[3]), ("1", &dirs[4])]
        .into_iter()
        .map(|(t, d)| {
            run_command(d, &["--threads", t, "--no-share"])
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, d) in alone.into_iter().zip(&dirs[3..]) {
        assert_ok(
            &child.wait_with_output().unwrap(),
            &format!("run into {}", d.display()),
        );
    }
    let [a, b, one, alone_two, alone_one] = dirs.each_ref().map(|d| rows(d));
    assert_eq!(a.len(), 9);
    assert_same_rows("two runs with --threads 2", &a, &b);
    assert_same_rows("--threads 1 against --threads 2", &a, &one);
    assert_same_rows("each point alone, --threads 2", &a, &alone_two);
    assert_same_rows("each point alone, --threads 1", &a, &alone_one);
    for bits in BITS {
        let first = a[&(bits, LEVELS[0])].json["point_id"].clone();
        for level in LEVELS {
            let shares = &a[&(bits, level)].json["shares_decoded_with"];
            if level == LEVELS[0] {
                assert_eq!(*shares, Value::Null, "{bits} bits, level {level}");
            } else {
                assert_eq!(*shares, first, "{bits} bits, level {level}");
            }
            let alone = &alone_two[&(bits, level)].json["shares_decoded_with"];
            assert_eq!(*alone, Value::Null, "alone: {bits} bits, level {level}");
        }
    }
    // Same text in results.csv too, timing columns excepted.
    let csv = |d: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(d.join("results.csv")).unwrap();
        let header: Vec<String> = text
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        let keep: Vec<usize> = (0..header.len())
            .filter(|&i| header[i] != "encode_mb_s" && header[i] != "decode_mb_s")
            .collect();
        text.lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
            })
            .collect()
    };
    let (ca, cb, c1) = (csv(&dirs[0]), csv(&dirs[1]), csv(&dirs[2]));
    if ca != cb || ca != c1 {
        differ(
            "results.csv across runs",
            &ca.join("\n"),
            &format!("{}\n\n{}", cb.join("\n"), c1.join("\n")),
        );
    }
}
