//! Regenerates `src/rpc/generated/*.rs` from `schema/*.capnp`.
//!
//! Needs the `capnp` compiler (Debian: `capnproto libcapnp-dev`). Run from the
//! workspace root: `cargo run -p almanac-codegen`. CI runs it and fails when the
//! checked-in files differ from fresh output.

use std::path::Path;
use std::process::ExitCode;

const SCHEMAS: [&str; 2] = ["schema/calendar.capnp", "schema/replication.capnp"];
const OUTPUT_DIR: &str = "src/rpc/generated";

fn main() -> ExitCode {
    if !Path::new("schema").is_dir() {
        eprintln!("error: schema/ not found; run this from the workspace root");
        return ExitCode::from(2);
    }
    let mut command = capnpc::CompilerCommand::new();
    // Streaming methods import /capnp/stream.capnp, which libcapnp-dev puts in
    // /usr/include, one of the compiler's standard import paths.
    command
        .src_prefix("schema")
        .output_path(OUTPUT_DIR)
        .default_parent_module(vec!["rpc".into(), "generated".into()]);
    for schema in SCHEMAS {
        command.file(schema);
    }
    match command.run() {
        Ok(()) => {
            println!("regenerated {OUTPUT_DIR} from {}", SCHEMAS.join(", "));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: capnp compile failed: {error}");
            eprintln!("hint: install the compiler with `apt-get install capnproto libcapnp-dev`");
            ExitCode::FAILURE
        }
    }
}
