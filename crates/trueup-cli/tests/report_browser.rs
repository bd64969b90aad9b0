//! The HTML report in a real browser: headless Chromium opens it from a file, offline, and
//! the test fails on any console message (a script error, a resource the page's
//! Content-Security-Policy refused) and when the page's script did not run to its end or
//! does not sort. A page broken on purpose proves that the check catches both. Needs
//! Debian's `chromium`; `TRUEUP_REQUIRE_CHROMIUM=1` (scripts/test sets it) makes its absence
//! a failure rather than a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::in_project as trueup;

/// What the browser saw: its console messages and the page's DOM after its scripts ran.
struct Page {
    console: Vec<String>,
    dom: String,
}

/// The browser, or `None` (with a line saying so) when it is missing and not required.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|path| path.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("TRUEUP_REQUIRE_CHROMIUM").is_none(),
            "TRUEUP_REQUIRE_CHROMIUM is set but there is no chromium on PATH (apt-get install chromium)"
        );
        eprintln!("skipped: the browser check needs chromium (apt-get install chromium)");
    }
    found
}

/// Opens `page` in headless Chromium (a new profile, no network services, as root needs
/// no sandbox) and returns what it logged to the console and the DOM it ended with.
fn open(browser: &Path, page: &Path) -> Page {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed:\n{log}");
    // `[pid:tid:time:INFO:CONSOLE:12] "message", source: file:///… (12)`; older versions
    // write `CONSOLE(12)`.
    let console = log
        .lines()
        .filter(|line| line.contains(":CONSOLE:") || line.contains(":CONSOLE("))
        .map(str::to_owned)
        .collect();
    Page {
        console,
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// A script run after the report's: it sorts the rules table by its Findings column, both
/// ways, and records in the DOM whether the rows came out in order.
const SORT_CHECK: &str = r#"<script>
(function () {
  var table = document.getElementById("rules");
  var column = Array.prototype.findIndex.call(table.tHead.rows[0].cells, function (c) { return c.textContent === "Findings"; });
  var button = table.tHead.rows[0].cells[column].querySelector("button");
  function counts() { return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return parseFloat(r.cells[column].textContent); }); }
  function ordered(list, up) { return list.every(function (n, i) { return i === 0 || (up ? list[i - 1] <= n : list[i - 1] >= n); }); }
  button.click();
  var up = counts();
  button.click();
  var down = counts();
  var fine = ordered(up, true) && ordered(down, false) && up[0] !== down[0];
  document.documentElement.setAttribute("data-sort-check", fine ? "sorted" : "unsorted " + up + " / " + down);
})();
</script>
</body>"#;

/// The demo with three runs, its report as HTML with the trend.
fn report_html(dir: &Path) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .args(["--quiet", "demo", "--dir"])
        .arg(dir.join("demo"))
        .status()
        .unwrap();
    // The demo exits 0 when it found exactly what it planted.
    assert!(status.success());
    let project = dir.join("demo/trueup.toml");
    for _ in 0..2 {
        assert_eq!(trueup(&project, &["--quiet", "check"]).0, Some(1));
    }
    let (code, html, stderr) = trueup(&project, &["report", "--format", "html"]);
    assert_eq!(code, Some(0), "{stderr}");
    html
}

#[test]
fn the_html_report_runs_in_a_browser_without_a_console_message() {
    let Some(browser) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let html = report_html(tmp.path());
    assert_eq!(html.matches("</body>").count(), 1);
    let page = tmp.path().join("report.html");
    std::fs::write(&page, html.replace("</body>", SORT_CHECK)).unwrap();
    let seen = open(&browser, &page);
    assert!(
        seen.console.is_empty(),
        "console messages:\n{}",
        seen.console.join("\n")
    );
    assert!(
        seen.dom.contains("data-sortable=\"ready\""),
        "the page's script did not finish:\n{}",
        seen.dom
    );
    assert!(
        seen.dom.contains("data-sort-check=\"sorted\""),
        "sorting failed:\n{}",
        seen.dom
    );
}

#[test]
fn a_page_broken_on_purpose_is_caught() {
    let Some(browser) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let html = report_html(tmp.path());

    // A script error halfway through the report's own script.
    let broken = html.replacen("\"use strict\";", "\"use strict\"; notAFunction();", 1);
    assert_ne!(broken, html);
    let page = tmp.path().join("broken.html");
    std::fs::write(&page, broken).unwrap();
    let seen = open(&browser, &page);
    assert!(
        seen.console
            .iter()
            .any(|line| line.contains("notAFunction is not defined")),
        "the script error was not seen: {:?}",
        seen.console
    );
    assert!(!seen.dom.contains("data-sortable=\"ready\""));

    // Something from outside the page: its policy refuses it, and says so on the console.
    let external = html.replacen(
        "<main>",
        "<main><img alt=\"\" src=\"https://example.invalid/x.png\">",
        1,
    );
    let page = tmp.path().join("external.html");
    std::fs::write(&page, external).unwrap();
    let seen = open(&browser, &page);
    assert!(
        seen.console
            .iter()
            .any(|line| line.contains("Content Security Policy")),
        "the refused image was not seen: {:?}",
        seen.console
    );
}
