//! What the load tester's integration tests share: the relais binary to run, and a run of
//! `relais-loadtest` against it.

#![allow(clippy::unwrap_used, dead_code)]
#![allow(clippy::panic, reason = "tests: a panic is a test failure")]

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

/// A finished `relais-loadtest` run: its JSON report and what it printed.
pub struct LoadRun {
    /// The report the run wrote.
    pub report: relais_loadtest::report::RunReport,
    /// Whether the tool exited with 0 (every criterion of the scenario held).
    pub succeeded: bool,
    /// Its standard output (the final table).
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `relais-loadtest ARGS --quiet --node-bin <relais> --report <temp dir>` (the tool
/// starts the node on loopback), reads the report file `json` it wrote and removes the
/// folder. `name` keeps the report folders of concurrent tests apart. The run must end
/// within 60 s.
pub fn run_loadtest(name: &str, args: &[&str], json: &str) -> LoadRun {
    let report_dir =
        std::env::temp_dir().join(format!("relais-loadtest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report_dir);
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_relais-loadtest"))
        .args(args)
        .args(["--quiet", "--node-bin"])
        .arg(relais_binary())
        .arg("--report")
        .arg(&report_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(report_dir.join(json))
        .unwrap_or_else(|e| panic!("no report {json}: {e}\n{stdout}\n{stderr}"));
    let _ = std::fs::remove_dir_all(&report_dir);
    LoadRun {
        report: serde_json::from_str(&text).unwrap(),
        succeeded: output.status.success(),
        stdout,
        stderr,
    }
}
