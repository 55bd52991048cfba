//! Compiles the wire schema, schema/ddcp.capnp at the top of the repository.

fn main() {
    // `cargo::error` fails the build with just this line, without a build-script trace.
    if let Err(message) = compile_schema() {
        println!("cargo::error={message}");
    }
}

fn compile_schema() -> Result<(), String> {
    println!("cargo::rerun-if-changed=../../schema/ddcp.capnp");
    capnpc::CompilerCommand::new()
        .src_prefix("../../schema")
        .file("../../schema/ddcp.capnp")
        .run()
        .map_err(|err| {
            format!(
                "capnp could not compile schema/ddcp.capnp ({err}); run scripts/install-deps.sh"
            )
        })
}
