//! What the load tester's integration tests share: the relais binary to run.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The relais binary: `$RELAIS_BIN`, else next to this test's target directory (built if
/// missing).
pub fn relais_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RELAIS_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test> → target/<profile>/relais
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join(format!("relais{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "relais"])
            .status()
            .unwrap();
        assert!(status.success(), "building the relais binary failed");
    }
    binary
}
