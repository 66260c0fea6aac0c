//! The `mdelab` command line as scripts see it: subcommand names and exit codes are a contract.
//!
//! (Having an integration test here also makes `cargo test --workspace` build the binary, which
//! the end-to-end tests in `tests/` run as a process.)

use std::process::Command;

fn mdelab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mdelab"))
        .args(args)
        .output()
        .expect("mdelab runs")
}

#[test]
fn help_lists_the_stable_subcommands() {
    let out = mdelab(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for name in ["demo", "up", "endpoints", "proxy"] {
        assert!(help.contains(name), "{name} missing from --help:\n{help}");
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let out = mdelab(&["demo", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("yaml"));
    let out = mdelab(&["endpoints", "--connectivity", "carrier-pigeon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard or streamlined"));
}

#[test]
fn endpoints_table_counts_its_rows() {
    let out = mdelab(&["endpoints", "--region", "au", "--connectivity", "standard"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = text.lines().filter(|l| l.contains("://")).count();
    assert!(text.ends_with(&format!("{rows} endpoints\n")), "{text}");
    assert!(text.contains("https://winatp-gw-aue.microsoft.com/test"));
}
