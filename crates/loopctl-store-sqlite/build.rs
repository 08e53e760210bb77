//! `sqlx::migrate!` embeds `migrations/` at compile time, but cargo only watches the files it
//! included; watching the directory makes a new migration file rebuild the crate as well.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
