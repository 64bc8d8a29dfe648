//! The report as JUnit XML, so that CI systems list each gated metric as a test case.
//!
//! Layout (written with `quick-junit`, which escapes text and drops characters XML cannot hold):
//!
//! - `<testsuites name="photonqa check SCENARIO">`;
//! - a suite `SCENARIO: columns` with one case per column (failing when the column is in one
//!   of baseline and run only) and the report's notes as its `system-out`;
//! - one suite per point, named `ID (PARAMS)`, with the swept parameters as properties and one
//!   case per comparison (`status`, then each column; `point` for a point on one side only),
//!   of class name `SCENARIO.ID`. A drift is a `<failure>` whose `message` is its report line
//!   and whose `type` is [`super::Drift::kind`]; its text gives baseline, run and tolerance.

use std::path::Path;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::compare::{Case, Drift, Report, column_line};
use super::{GateError, write_atomically};
use crate::metrics::values::plain;

/// The report as a JUnit XML document.
pub fn junit_xml(report: &Report) -> String {
    let mut xml = quick_junit::Report::new(format!("photonqa check {}", report.scenario));

    let mut columns = TestSuite::new(format!("{}: columns", report.scenario));
    for case in &report.columns {
        columns.add_test_case(test_case(
            case,
            &format!("{}.columns", report.scenario),
            &column_line(case),
        ));
    }
    if !report.notes.is_empty() {
        columns.set_system_out(report.notes.join("\n"));
    }
    xml.add_test_suite(columns);

    for point in &report.points {
        let mut suite = TestSuite::new(point.label());
        suite.add_properties(
            point
                .params
                .iter()
                .map(|(k, v)| Property::new(k.as_str(), plain(v))),
        );
        let class = format!("{}.{}", report.scenario, point.point_id);
        for case in &point.cases {
            let line = format!("point {}: {}", point.label(), case.describe());
            suite.add_test_case(test_case(case, &class, &line));
        }
        xml.add_test_suite(suite);
    }
    // Serialising into memory fails only on I/O, which a String cannot give.
    xml.to_string()
        .unwrap_or_else(|e| format!("<!-- JUnit serialisation failed: {e} -->\n"))
}

/// Writes [`junit_xml`] of `report` to `path` atomically.
pub fn write_junit(report: &Report, path: &Path) -> Result<(), GateError> {
    write_atomically(path, junit_xml(report).as_bytes())
}

/// One case: passing, or a failure whose message is `line`.
fn test_case(case: &Case, class: &str, line: &str) -> TestCase {
    let status = match &case.drift {
        None => TestCaseStatus::success(),
        Some(drift) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let side = |v: &Option<serde_json::Value>| v.as_ref().map_or("-".into(), plain);
            let mut detail = format!("baseline: {}\nrun: {}", side(&case.old), side(&case.new));
            if let Drift::Beyond {
                difference,
                allowed,
                tolerance,
                ..
            } = drift
            {
                detail.push_str(&format!(
                    "\n|diff|: {difference:e}\nallowed: {allowed:e} ({tolerance})"
                ));
            }
            status
                .set_message(line)
                .set_type(drift.kind())
                .set_description(detail);
            status
        }
    };
    let mut test = TestCase::new(case.name.as_str(), status);
    test.set_classname(class);
    test
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::gate::fixtures::{columns, rows};
    use crate::gate::{Baseline, check};
    use crate::scenario::tolerances::Tolerances;

    fn report(changed: impl FnOnce(&mut Vec<crate::runner::results::PointResult>)) -> Report {
        let baseline = Baseline::from_rows("demo", "hash0", &rows(), &columns()).unwrap();
        let mut run = rows();
        changed(&mut run);
        check(&baseline, &run, &columns(), &Tolerances::default())
    }

    #[test]
    fn passing_report_has_every_case_and_no_failure() {
        let xml = junit_xml(&report(|_| {}));
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(parsed.tests, 43);
        assert_eq!(parsed.failures, 0);
        assert_eq!(parsed.test_suites.len(), 4);
        assert_eq!(parsed.test_suites[0].name.as_str(), "demo: columns");
        assert_eq!(
            parsed.test_suites[2].name.as_str(),
            "wp-b (quantize.bits=6, deflate.level=6)"
        );
        assert!(!xml.contains("<failure"));
    }

    #[test]
    fn drift_is_a_failure_of_its_metric() {
        let r = report(|rows| {
            rows[1].distortion.insert("psnr".into(), json!(41.0));
        });
        let xml = junit_xml(&r);
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!((parsed.tests, parsed.failures, parsed.errors), (43, 1, 0));
        let suite = &parsed.test_suites[2];
        assert_eq!(suite.failures, 1);
        assert_eq!(suite.properties[0].name.as_str(), "quantize.bits");
        assert_eq!(suite.properties[0].value.as_str(), "6");
        let failed: Vec<&TestCase> = suite
            .test_cases
            .iter()
            .filter(|c| !matches!(c.status, TestCaseStatus::Success { .. }))
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name.as_str(), "psnr");
        assert_eq!(
            failed[0].classname.as_ref().map(|c| c.as_str()),
            Some("demo.wp-b")
        );
        let TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            ..
        } = &failed[0].status
        else {
            panic!("not a failure");
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        assert_eq!(message.as_ref().unwrap().as_str(), r.lines()[0]);
        assert_eq!(ty.as_ref().unwrap().as_str(), "beyond-tolerance");
        let description = description.as_ref().unwrap().as_str();
        assert!(
            description.starts_with("baseline: 41.25\nrun: 41.0\n|diff|: 2.5e-1"),
            "{description}"
        );
        // The exact fragment CI systems read.
        assert!(
            xml.contains(r#"<testcase name="psnr" classname="demo.wp-b">"#),
            "{xml}"
        );
        assert!(xml.contains(r#"<failure message="point wp-b"#), "{xml}");
    }

    #[test]
    fn missing_point_column_and_notes_appear() {
        let r = report(|rows| {
            rows.remove(0);
            for row in rows.iter_mut() {
                row.provenance.scenario_hash = "other".into();
            }
        });
        let xml = junit_xml(&r);
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(parsed.failures, 1);
        let suite = &parsed.test_suites[1];
        assert_eq!(suite.test_cases.len(), 1);
        assert_eq!(suite.test_cases[0].name.as_str(), "point");
        let out = parsed.test_suites[0].system_out.as_ref().unwrap();
        assert!(
            out.as_str().contains("the scenario file changed"),
            "{out:?}"
        );
    }

    #[test]
    fn text_is_escaped() {
        let mut r = report(|_| {});
        r.scenario = "a<b & \"c\"".into();
        r.points[0].cases[0].drift = Some(Drift::StatusChanged {
            error: Some("bad <tag> & \u{1b}[31mred\u{1b}[0m".into()),
        });
        let xml = junit_xml(&r);
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(
            parsed.name.as_ref().unwrap().as_str(),
            "photonqa check a<b & \"c\""
        );
        assert!(xml.contains("a&lt;b &amp; &quot;c&quot;"), "{xml}");
        assert!(!xml.contains('\u{1b}'));
    }

    #[test]
    fn write_junit_writes_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports/gate.xml");
        let r = report(|_| {});
        write_junit(&r, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), junit_xml(&r));
    }
}
