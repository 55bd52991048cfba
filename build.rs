//! Links the cr-sqlite static archive that scripts/build-crsqlite.sh builds. (The wire schema is
//! compiled by crates/ddcp-sync.)

use std::path::PathBuf;

const CRSQLITE_VERSION: &str = "0.16.3";
const CRSQLITE_ARCHIVE: &str = "libcrsqlite_static.a";

fn main() {
    // `cargo::error` fails the build with just this line, without a build-script trace.
    if let Err(message) = link_crsqlite() {
        println!("cargo::error={message}");
    }
}

fn link_crsqlite() -> Result<(), String> {
    println!("cargo::rerun-if-env-changed=CRSQLITE_DIR");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = std::env::var_os("CRSQLITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            manifest_dir
                .join(".cache")
                .join(format!("crsqlite-{CRSQLITE_VERSION}"))
        });
    let archive = dir.join(CRSQLITE_ARCHIVE);
    println!("cargo::rerun-if-changed={}", archive.display());
    if !archive.is_file() {
        return Err(format!(
            "cr-sqlite {CRSQLITE_VERSION} is not built ({} is missing): run scripts/build-crsqlite.sh",
            archive.display()
        ));
    }
    println!("cargo::rustc-link-search=native={}", dir.display());
    println!("cargo::rustc-link-lib=static=crsqlite_static");
    Ok(())
}
