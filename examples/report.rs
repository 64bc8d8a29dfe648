//! Runs a scenario and writes its report, with limits given on the command line: what `photonqa
//! run` does once the scenario carries `[limits]` and `[objective]`.
//!
//!     cargo run --example report -- SCENARIO OUT ['COLUMN = { min = X }' ...] [--objective 'max ratio']
//!
//! Each limit is TOML as in a scenario's `[limits]` table, e.g. `'ssim = { min = 0.7 }'`. The
//! run resumes in OUT (points already in `OUT/results.jsonl` are not measured again); then
//! `OUT/recommendation.json`, `OUT/report.html`, `OUT/summary.md` and `OUT/plots/` are written
//! and their paths printed.

use std::path::PathBuf;

use photonqa::report::{featured, write_report};
use photonqa::runner::{self, DEFAULT_MEMORY_BUDGET, RunOptions, slices::worst_slice};
use photonqa::scenario::Scenario;
use photonqa::select::{Limit, Objective, recommendation, select, write_recommendation};

fn main() {
    if let Err(e) = report() {
        eprintln!("report: {e}");
        std::process::exit(2);
    }
}

fn report() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(scenario), Some(out)) = (args.next(), args.next()) else {
        return Err(
            "usage: report SCENARIO OUT ['COLUMN = { min = X }' ...] [--objective 'max ratio']"
                .into(),
        );
    };
    let mut limits = Vec::new();
    let mut objective = Objective::default();
    while let Some(arg) = args.next() {
        if arg == "--objective" {
            objective = Objective::parse(&args.next().ok_or("--objective needs a value")?)?;
            continue;
        }
        let table: toml::Table = toml::from_str(&arg).map_err(|e| format!("{arg}: {e}"))?;
        for (column, value) in &table {
            limits.push(Limit::from_toml(column, value)?);
        }
    }
    let scenario = Scenario::load(&PathBuf::from(scenario)).map_err(|e| e.to_string())?;
    let out = PathBuf::from(out);
    let options = RunOptions {
        out: out.clone(),
        resume: true,
        memory_budget: DEFAULT_MEMORY_BUDGET,
        threads: None,
    };
    let summary = runner::run(&scenario, &options)?;
    let rows = &summary.rows;
    let path = write_recommendation(&out, &recommendation(rows, &limits, &objective))?;
    println!("{}", path.display());
    let selection = select(rows, &limits, &objective);
    let triptych = match featured(&selection) {
        Some((row, _)) => Some(worst_slice(&scenario, row, options.memory_budget, None)?),
        None => None,
    };
    let written = write_report(
        &out,
        &scenario,
        rows,
        &summary.columns,
        &limits,
        &objective,
        triptych.as_ref(),
    )?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
