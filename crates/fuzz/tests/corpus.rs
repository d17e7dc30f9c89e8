//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) and each
//! target's seeds through the targets, on the stable toolchain: every
//! input that ever mattered to a fuzzer (a crash fixed, a new path found)
//! stays a regression test in every `cargo test`.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_target_survives_its_seeds_and_corpus() {
    for (name, target) in kraft_fuzz::TARGETS {
        let seeds = kraft_fuzz::seeds(name);
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for seed in &seeds {
            target(seed);
        }
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no corpus", dir.display());
        for file in &files {
            let input = std::fs::read(file).unwrap();
            eprintln!("{name}: {}", file.display());
            target(&input);
        }
    }
}
