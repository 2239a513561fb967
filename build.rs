//! The web UI (`ui/`) is embedded in the binary by `include_dir!`, which cargo does not know
//! to watch: rebuild when a UI file changes. Benchmarks record which llama.cpp they measured:
//! the version of `llama-cpp-sys-2` (it vendors llama.cpp) is read from Cargo.lock.
fn main() {
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"llama-cpp-sys-2\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or("unknown", |v| v.trim_matches('"'));
    println!("cargo:rustc-env=PADDOCK_LLAMA_CPP_SYS_VERSION={version}");
}
