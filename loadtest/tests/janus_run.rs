//! `relais-loadtest --target janus` end to end: 4 people of the small scenario for 6 s
//! against a real Janus 1.1 VideoRoom, through the command line, must all connect and get
//! every stream without loss; Janus's CPU must be observed (its pid from `scripts/janus`) and
//! latency must be reported as not measured (Janus does not forward abs-capture-time), never
//! as a pass.
//!
//! Janus needs a network namespace (libnice does no ICE over loopback), so the test runs
//! `loadtest/scripts/janus run -- relais-loadtest --target janus ...`, which starts Janus in
//! a namespace of its own and the load generator inside it. Skipped (with a message) unless
//! root with `janus` installed and namespaces allowed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use relais_loadtest::report::RunReport;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("network namespaces need root");
    }
    if !in_path("janus") {
        return Some("janus is not installed (apt-get install janus)");
    }
    // Containers may refuse namespaces even to root.
    let probe = format!("relais-janus-probe-{}", std::process::id());
    let created = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        return Some("cannot create a network namespace here");
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    None
}

#[test]
fn four_people_of_the_small_scenario_through_janus() {
    if let Some(reason) = skip_reason() {
        eprintln!("janus run test skipped: {reason}");
        return;
    }
    let report_dir: PathBuf =
        std::env::temp_dir().join(format!("relais-loadtest-janus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report_dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/janus");
    let mut child = Command::new(&script)
        .args(["run", "--", env!("CARGO_BIN_EXE_relais-loadtest")])
        .args([
            "--target",
            "janus",
            "--scenario",
            "small",
            "--participants",
            "4",
        ])
        .args(["--duration", "6", "--ramp-up", "1", "--quiet", "--report"])
        .arg(&report_dir)
        .env(
            "JANUS_NETNS",
            format!("relais-janus-run-{}", std::process::id()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            // SIGTERM lets the script's trap stop Janus and remove the namespace.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!("the Janus run did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    eprintln!("{stdout}");
    // Latency is not measured, so the run cannot pass: exit status 1, not a crash (2 is the
    // script's "something is missing", others a failure of the tool).
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(stdout.contains("FAIL"), "{stdout}");

    let json = report_dir.join("janus-videoroom.json");
    let text = std::fs::read_to_string(&json).unwrap();
    let report: RunReport = serde_json::from_str(&text).unwrap();
    assert_eq!(report.target, "janus (videoroom)");
    assert_eq!(report.participants, 4);
    assert_eq!(
        report.load_generator.connected, 4,
        "{:?}",
        report.load_generator
    );
    assert_eq!(
        report.load_generator.failed, 0,
        "{:?}",
        report.load_generator
    );
    assert!(report.receive.frames > 100, "{:?}", report.receive);
    assert_eq!(report.receive.lost, 0, "{:?}", report.receive);
    assert_eq!(report.receive.loss_pct, 0.0);
    assert_eq!(report.receive.streams_received_pct, 100.0);
    assert_eq!(report.load_generator.srtp_verify_failed, 0);

    // Janus observed through /proc (no metrics: the forwarded count is what the receivers
    // got).
    let node = report.node.as_ref().expect("Janus's CPU is measured");
    assert!(node.cpu_s > 0.0, "{node:?}");
    assert!(node.rss_max_mib > 1.0, "{node:?}");
    assert_eq!(node.forwarded_source, "receivers");
    assert!(node.forwarded_packets > 1000, "{node:?}");
    assert!(node.cpu_s_per_million_packets > 0.0, "{node:?}");

    // Latency: no samples, and its criterion "not measured" (null in the JSON), not passed.
    assert_eq!(report.receive.latency.samples, 0);
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    let latency = raw["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "max_added_latency_p99_ms")
        .expect("the latency criterion is reported");
    assert!(latency["measured"].is_null(), "{latency}");
    assert_eq!(latency["passed"], false);
    let criterion = report
        .criteria
        .iter()
        .find(|c| c.name == "max_added_latency_p99_ms")
        .unwrap();
    assert!(!criterion.is_measured());
    assert!(!report.passed);
    // Every other criterion holds.
    for c in report.criteria.iter().filter(|c| c.is_measured()) {
        assert!(c.passed, "{c:?}");
    }
    assert!(
        stdout.contains("not measured"),
        "the table says so: {stdout}"
    );
    let html = std::fs::read_to_string(report_dir.join("index.html")).unwrap();
    assert!(html.contains("not measured"));
    let _ = std::fs::remove_dir_all(&report_dir);
}
