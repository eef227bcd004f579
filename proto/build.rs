//! Compiles `proto/flowwatch/v1/*.proto` into the tonic clients and servers, with protox (a
//! protobuf compiler in Rust: no `protoc` needed), and keeps the compiled descriptors for the
//! servers' reflection service.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(
        ["flowwatch/v1/flowwatch.proto", "flowwatch/v1/cluster.proto"],
        ["proto"],
    )?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), files.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(files)?;
    Ok(())
}
