//! The web UI (`ui/`) is embedded in the binary by `include_dir!`, which cargo does not know
//! to watch: rebuild when a UI file changes.
fn main() {
    println!("cargo:rerun-if-changed=ui");
}
