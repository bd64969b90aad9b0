//! The deploy examples for `check --metrics-file` run as written: the systemd unit's
//! `ExecStart` and the Kubernetes CronJob's command, with the binary and the paths pointed
//! at a temp dir, on the demo shop with planted problems; and systemd-analyze verifies the
//! units. (The Kubernetes manifests are not validated here: that needs a cluster's API.)

mod common;
mod metrics_shop;

use std::path::{Path, PathBuf};
use std::process::Command;

use metrics_shop::shop;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// A deploy file's text with its paths pointed at a test's: the binary, the project and
/// the textfile collector's folder.
fn localized(text: &str, project: &Path, textfile: &Path) -> String {
    text.replace("/usr/local/bin/trueup", env!("CARGO_BIN_EXE_trueup"))
        .replace("/var/lib/trueup/trueup.toml", project.to_str().unwrap())
        .replace("/etc/trueup/project/trueup.toml", project.to_str().unwrap())
        .replace(
            "/var/lib/prometheus/node-exporter/trueup.prom",
            textfile.join("trueup.prom").to_str().unwrap(),
        )
        .replace(
            "--metrics-file /textfile/trueup.prom",
            &format!("--metrics-file {}", textfile.join("trueup.prom").display()),
        )
}

#[test]
fn the_systemd_check_unit_runs_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let project = shop(&tmp.path().join("shop"), 5);
    let textfile = tmp.path().join("textfile");
    std::fs::create_dir(&textfile).unwrap();
    let unit = std::fs::read_to_string(deploy("systemd/trueup-check.service")).unwrap();
    let unit = localized(&unit, &project, &textfile);
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words: Vec<&str> = exec.split_whitespace().collect();
    let output = Command::new(words[0])
        .args(&words[1..])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    // The shop's failing rule exits 2; the unit counts only 0 and 1 (findings) as success.
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(unit.contains("\nSuccessExitStatus=1\n"));
    let metrics = std::fs::read_to_string(textfile.join("trueup.prom")).unwrap();
    assert!(
        metrics.contains("data_integrity_check_failures{schedule=\"hourly\"} 7\n"),
        "{metrics}"
    );
}

#[test]
fn the_kubernetes_cronjob_command_exits_0_on_findings_and_2_on_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let project = shop(&tmp.path().join("shop"), 5);
    let textfile = tmp.path().join("textfile");
    std::fs::create_dir(&textfile).unwrap();
    let job = std::fs::read_to_string(deploy("kubernetes/trueup-check-cronjob.yaml")).unwrap();
    let job = localized(&job, &project, &textfile);
    // The folded (`>-`) shell command under `args:`: its lines joined by spaces.
    let mut lines = job.lines().skip_while(|l| l.trim() != "- >-").skip(1);
    let first = lines.next().expect("the command's first line");
    let indent = first.len() - first.trim_start().len();
    let script = std::iter::once(first)
        .chain(lines.take_while(|l| l.len() - l.trim_start().len() == indent))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let run = |script: &str| {
        Command::new("/bin/sh")
            .args(["-c", script])
            .output()
            .unwrap()
            .status
            .code()
    };
    // With the failing rule: exit 2, the Job fails.
    assert_eq!(run(&script), Some(2), "{script}");
    // Findings only (the failing rule left out): exit 1 from trueup, 0 for the Job.
    let findings_only = script.replace(" check ", " check --rule 'ecommerce.*' ");
    assert_ne!(findings_only, script);
    assert_eq!(run(&findings_only), Some(0), "{findings_only}");
    // The findings are those of the run before: none is new, nothing alerts.
    let metrics = std::fs::read_to_string(textfile.join("trueup.prom")).unwrap();
    assert!(
        metrics.contains("data_integrity_check_failures{schedule=\"hourly\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trueup_rule_findings{schedule=\"hourly\",rule=\"ecommerce.orphaned-orders\",severity=\"critical\",source=\"shop\"} 3\n"),
        "{metrics}"
    );
}

#[test]
fn systemd_analyze_verifies_the_units() {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        outcome => {
            assert!(
                std::env::var_os("TRUEUP_REQUIRE_SYSTEMD").is_none(),
                "systemd-analyze is required (TRUEUP_REQUIRE_SYSTEMD) but does not run: {outcome:?}"
            );
            eprintln!("skipped: systemd-analyze is not installed (Debian's `systemd` package)");
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let (project, textfile) = (tmp.path().join("trueup.toml"), tmp.path().to_owned());
    for unit in [
        "trueup-serve.service",
        "trueup-check.service",
        "trueup-check.timer",
    ] {
        let text = std::fs::read_to_string(deploy(&format!("systemd/{unit}"))).unwrap();
        std::fs::write(tmp.path().join(unit), localized(&text, &project, &textfile)).unwrap();
    }
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(
            [
                "trueup-serve.service",
                "trueup-check.service",
                "trueup-check.timer",
            ]
            .map(|unit| tmp.path().join(unit)),
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success() && text.trim().is_empty(), "{text}");
}
