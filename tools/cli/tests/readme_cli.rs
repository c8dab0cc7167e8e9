//! The README's command blocks run as written (issue 22: its first terminal block failed when
//! copied). Every ```` ```sh ```` block of `README.md` is run in order, in one `bash` session
//! (`set -euo pipefail`) started at the clone's root, so a block may use what an earlier one
//! set (`$W`, the host in the background), against this build's `smartpos`:
//!
//! - `smartpos` is a shell function calling the debug binary cargo built for this test, which
//!   wins over the PATH the README sets (a stale release binary is never run);
//! - a line that starts the host simulator in the background (`smartpos host ... &`) is run
//!   as written (the binary itself, so `kill %1` stops it), then the session waits until the
//!   host prints `listening on` (a reader who types the lines one by one never notices); the
//!   session stops the hosts it started when it ends;
//! - a line whose comment names a reference (`# reference 000001000002`, `# replayed:
//!   000001000002`) must print that reference: the references the README quotes line up;
//! - a line whose comment says `exits 1` must fail (a command the README shows being refused);
//! - the block that is only `scripts/demo.sh` / `scripts/test.sh` is left out: CI runs both,
//!   and this test is itself part of `scripts/test.sh`.
//!
//! Any command that fails fails the test, with the session's output. The host listens on the
//! README's fixed port, 127.0.0.1:8583; the test says so when that port is taken.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::BIN;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The README's host address.
const HOST_ADDR: &str = "127.0.0.1:8583";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The ```` ```sh ```` blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(Vec::new()),
            None => {}
            Some(lines) if line.trim_end() == "```" => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    assert!(current.is_none(), "README.md has an unclosed ```sh block");
    blocks
}

/// The command part of a line (without its `# comment`; `#` inside quotes is not one).
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || line[..i].ends_with(' ') => {
                return (&line[..i], Some(&line[i + 1..]));
            }
            _ => {}
        }
    }
    (line, None)
}

/// The 12-digit reference a comment quotes, if any.
fn quoted_reference(comment: &str) -> Option<&str> {
    comment
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 12)
}

/// Whether a block only runs the project scripts (`scripts/demo.sh`, `scripts/test.sh`).
fn only_project_scripts(block: &str) -> bool {
    block
        .lines()
        .map(|l| split_comment(l).0.trim())
        .filter(|c| !c.is_empty())
        .all(|c| c == "scripts/demo.sh" || c == "scripts/test.sh")
}

/// The bash session for the blocks (see the module documentation).
fn session(blocks: &[String], scratch: &Path) -> String {
    let mut script = format!(
        r#"set -euo pipefail
smartpos() {{ "{bin}" "$@"; }}
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
wait_for_host() {{
    for _ in $(seq 200); do
        grep -q "listening on" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "README test: the host simulator did not start:"; cat "$1"; return 1
}}
expect_reference() {{
    grep -q "\"reference\":\"$1\"" <<<"$2" || {{ echo "README test: expected reference $1"; return 1; }}
}}
"#,
        bin = BIN
    );
    let mut hosts = 0;
    for (n, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '### README block {}'\n", n + 1));
        for line in block.lines() {
            let (command, comment) = split_comment(line);
            let command = command.trim_end();
            script.push_str(&format!("echo '$ {}'\n", line.replace('\'', r"'\''")));
            if command.starts_with("smartpos host ") && command.ends_with('&') {
                hosts += 1;
                let log = scratch.join(format!("host-{hosts}.log"));
                // The binary itself in the background (not the function's subshell), so
                // `kill %1` and the clean-up stop the host, not a shell around it.
                let args = command
                    .trim_end_matches('&')
                    .trim_end()
                    .trim_start_matches("smartpos");
                script.push_str(&format!(
                    "\"{BIN}\"{args} > '{log}' 2>&1 &\nwait_for_host '{log}'\n",
                    log = log.display()
                ));
            } else if comment.is_some_and(|c| c.contains("exits 1")) {
                // A command the README shows failing (e.g. a refused card): it must fail.
                script.push_str(&format!(
                    "if {command}; then echo 'README test: expected exit status 1'; exit 1; fi\n"
                ));
            } else if let Some(reference) = comment.and_then(quoted_reference)
                && command.trim_start().starts_with("smartpos ")
            {
                script.push_str(&format!(
                    "out=$({command})\necho \"$out\"\nexpect_reference {reference} \"$out\"\n"
                ));
            } else {
                script.push_str(line);
                script.push('\n');
            }
        }
    }
    script
}

#[test]
fn readme_command_blocks_run_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks: Vec<String> = sh_blocks(&readme)
        .into_iter()
        .filter(|b| !only_project_scripts(b))
        .collect();
    assert!(
        blocks.len() >= 2,
        "the README's smartpos blocks were found: {blocks:?}"
    );
    assert!(
        std::net::TcpListener::bind(HOST_ADDR).is_ok(),
        "{HOST_ADDR}, the README's host address, is taken: stop whatever listens there"
    );
    let scratch = common::tmp("readme");
    let script = session(&blocks, &scratch);
    std::fs::write(scratch.join("session.sh"), &script).unwrap();
    let mut child = Command::new("bash")
        .arg(scratch.join("session.sh"))
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    // Wait with a deadline: a command that hangs fails the test instead of blocking CI.
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "a README command failed ({}):\n{text}",
        out.status
    );
    // The receipt shows the local time with its offset.
    assert!(text.contains("+08:00"), "{text}");
}

#[test]
fn comments_and_references_are_read_as_intended() {
    assert_eq!(
        split_comment("smartpos x '{\"a\":\"#\"}'  # reference 000001000002"),
        (
            "smartpos x '{\"a\":\"#\"}'  ",
            Some(" reference 000001000002")
        )
    );
    assert_eq!(
        quoted_reference(" replayed: 000001000002, nothing sent"),
        Some("000001000002")
    );
    assert_eq!(quoted_reference(" 15.00 of 20.00 left"), None);
    let script = session(
        &["smartpos terminal --data $W/t1 sale --via swipe   # refused, exits 1".to_owned()],
        Path::new("/tmp"),
    );
    assert!(script.contains("if smartpos terminal --data $W/t1 sale --via swipe; then"));
    assert!(only_project_scripts(
        "scripts/demo.sh     # demo\nscripts/test.sh     # checks\n                    # more"
    ));
    assert!(!only_project_scripts("scripts/demo.sh\nsmartpos tool kcv"));
}
