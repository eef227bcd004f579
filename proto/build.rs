//! Compiles `proto/flowwatch/v1/flowwatch.proto` into the tonic client and server, with protox
//! (a protobuf compiler in Rust: no `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["flowwatch/v1/flowwatch.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(files)?;
    Ok(())
}
