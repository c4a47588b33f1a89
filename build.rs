// `sqlx::migrate!` embeds the files of `migrations/` at compile time, but cargo does not know
// that the crate depends on them: without this, a new migration alone does not rebuild the
// binary, which then runs without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
