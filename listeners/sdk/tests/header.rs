//! `include/logdaemon.h` is generated from `src/abi/` with cbindgen: this
//! test regenerates it and fails when the checked-in header is stale.
//! `LOGDAEMON_BLESS=1 cargo test -p logdaemon-sdk --test header` rewrites it.

use std::path::Path;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/abi/mod.rs"))
        .with_src(dir.join("src/abi/v1.rs"))
        .generate()
        .expect("generate the header")
        .write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn the_checked_in_header_is_what_cbindgen_generates_from_the_abi() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/logdaemon.h");
    let fresh = generate();
    if std::env::var_os("LOGDAEMON_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write the header");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "{} is stale: it differs from what cbindgen generates from src/abi/; \
         regenerate it with `LOGDAEMON_BLESS=1 cargo test -p logdaemon-sdk --test header` and commit it",
        path.display()
    );
}
