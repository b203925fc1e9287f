//! One trybuild case per diagnostic the macros emit, plus the README's
//! user-facing shape compiling as written. Regenerate the `.stderr` files
//! with `TRYBUILD=overwrite cargo test -p fidius-derive --test ui` and review
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
