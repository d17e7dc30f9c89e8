//! Generates the prost types from the workspace's `proto/` directory with a
//! vendored `protoc`, so a fresh machine needs nothing installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let dir = "../../proto";
    let files = ["metadata.proto", "raft.proto", "controller.proto"].map(|f| format!("{dir}/{f}"));
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    prost_build::Config::new()
        .bytes(["."])
        .compile_protos(&files, &[dir])?;
    Ok(())
}
