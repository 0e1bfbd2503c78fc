//! Compile-time refusals: each `ui/*.rs` must fail with the `.stderr` beside it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
