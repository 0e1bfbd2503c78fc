//! Compile-time refusals: each `ui/**/*.rs` must fail with the `.stderr` beside
//! it, and each `ui/pass/*.rs` must compile.
//!
//! rustc prints a type by its bare name only while no other type of that name
//! is in the crate graph, so a message that names Diesel's or the backends'
//! types depends on the features enabled. The cases are split accordingly:
//! - `ui/derive/`: mistakes the derive reports (and the call sites it keeps
//!   quiet after them), whose messages name no backend type. They run under
//!   any feature set, the default (`sqlite`) included:
//!   `cargo test -p diesel-get-or-create-tests --test ui`.
//! - `ui/pass/`: models that must compile (on SQLite).
//! - `ui/calls/`: refusals at call sites, whose messages name column and
//!   backend types. Their `.stderr` files hold for all backends enabled, as
//!   `scripts/test.sh` builds them (`--all-features`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/derive/*.rs");
    t.pass("ui/pass/*.rs");
    if cfg!(all(feature = "postgres", feature = "mysql")) {
        t.compile_fail("ui/calls/*.rs");
    }
}
