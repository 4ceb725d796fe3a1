//! Runs the built `relais` binary: help, --print-config, precedence and refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use relais::config::Key;

/// The binary with no `RELAIS_*` variable inherited from the test's environment.
fn relais() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relais"));
    for key in Key::ALL {
        cmd.env_remove(key.env());
    }
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("relais-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn help_mentions_every_env_variable_and_flag() {
    let out = relais().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for key in Key::ALL {
        assert!(
            help.contains(key.env()),
            "{} missing from --help",
            key.env()
        );
        assert!(
            help.contains(key.flag()),
            "{} missing from --help",
            key.flag()
        );
    }
    assert!(help.contains("--config"));
    assert!(help.contains("--print-config"));
    assert!(help.contains("precedence"));
}

#[test]
fn print_config_round_trips_through_a_file() {
    let out = relais()
        .args(["--print-config", "--log-level", "debug"])
        .args(["--media-announced-addresses", "203.0.113.7,2001:db8::1"])
        .env("RELAIS_HTTP_PUBLIC_BASE_URL", "https://relais.example.org")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("level = \"debug\""), "{printed}");
    let path = temp_file("roundtrip.toml", &printed);
    let again = relais()
        .arg("--print-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), printed);
}

#[test]
fn precedence_file_env_cli() {
    let path = temp_file(
        "precedence.toml",
        "[media]\nbind = \"0.0.0.0:1000\"\n[log]\nlevel = \"debug\"\n",
    );
    let print = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = relais();
        cmd.arg("--print-config").arg("--config").arg(&path);
        if let Some(v) = env {
            cmd.env("RELAIS_MEDIA_BIND", v);
        }
        if let Some(v) = flag {
            cmd.args(["--media-bind", v]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(print(None, None).contains("bind = \"0.0.0.0:1000\""));
    assert!(print(Some("0.0.0.0:2000"), None).contains("bind = \"0.0.0.0:2000\""));
    assert!(print(Some("0.0.0.0:2000"), Some("0.0.0.0:3000")).contains("bind = \"0.0.0.0:3000\""));
    assert!(print(None, None).contains("level = \"debug\""));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn tokens_are_never_printed() {
    let out = relais()
        .arg("--print-config")
        .env("RELAIS_HTTP_PRIVATE_API_TOKEN", "hunter2")
        .env("RELAIS_HTTP_PRIVATE_BIND", "0.0.0.0:8080")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains("private_api_token = \"<set>\""),
        "{printed}"
    );
    assert!(!printed.contains("hunter2"));
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let out = relais().env("RELAIS_MEDIA_BIND", "abc").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out)
        .contains("RELAIS_MEDIA_BIND: 'abc' is not a socket address (expected e.g. [::]:10000)"));

    let out = relais().args(["--log-level", "loud"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--log-level: 'loud' is not a log level"));

    let path = temp_file("unknown.toml", "[http]\nprivate_token = \"x\"\n");
    let out = relais().arg("--config").arg(&path).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("config file ") && err.contains("unknown field `private_token`"),
        "{err}"
    );

    let out = relais()
        .env("RELAIS_HTTP_PRIVATE_BIND", "0.0.0.0:8080")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(
        "http.private_api_token is required when http.private_bind is not a loopback address"
    ));

    let out = relais()
        .arg("--config")
        .arg("/nonexistent/relais.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("config file /nonexistent/relais.toml"));
}
