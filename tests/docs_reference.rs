//! `docs/reference.md` is what `photonqa reference` prints from the registries: a stage,
//! metric, analysis or parameter added, renamed or re-documented without regenerating the page
//! fails here.

mod common;

use common::{assert_ok, photonqa};

#[test]
fn the_committed_reference_is_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = photonqa(std::path::Path::new(root), &["reference"]);
    assert_ok(&out, "reference");
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(format!("{root}/docs/reference.md")).unwrap();
    assert!(
        generated == committed,
        "docs/reference.md is stale: run `cargo run --release -- reference > docs/reference.md`"
    );
    // Every registered name has its entry.
    for name in photonqa::pipeline::registry::ids()
        .into_iter()
        .chain(photonqa::metrics::registry::names())
        .chain(photonqa::analysis::registry::kinds())
    {
        assert!(committed.contains(&format!("`{name}`")), "{name}");
    }
}
