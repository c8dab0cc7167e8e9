//! Every `--help` of the `smartpos` command names only commands that exist (issue 22: the
//! `settings` help sent users to a `policy show` that did not exist).
//!
//! The test walks the whole command tree through the binary's own `--help` output (the
//! `Commands:` lists), then checks every back-quoted span of every help text that reads like a
//! command: two or more lower-case words (`policy show`), anything starting with `smartpos `,
//! or a single word that names a command somewhere in the tree (`show`). Such a span must
//! resolve to a command: from the root, from `terminal`, or from the command whose help names
//! it or one of its parents. Other single words are option values (`nfc`, `chip`) and JSON keys
//! (`operators`, `balances`): a lone word that names no command at all is not checked, which is
//! the limit of this test.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::BIN;
use std::collections::BTreeSet;
use std::process::Command;

/// `smartpos PATH --help` (the `terminal` level needs no `--data` for help).
fn help(path: &[String]) -> String {
    let out = Command::new(BIN)
        .args(path)
        .arg("--help")
        .output()
        .expect("run smartpos --help");
    assert!(out.status.success(), "{path:?} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The subcommand names of a help text's `Commands:` list (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    let Some((_, rest)) = text.split_once("Commands:\n") else {
        return Vec::new();
    };
    rest.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            // Names are indented by two spaces; wrapped descriptions by more.
            let name = l.strip_prefix("  ")?;
            (!name.starts_with(' ')).then(|| name.split_whitespace().next().map(str::to_owned))?
        })
        .filter(|n| n != "help")
        .collect()
}

/// Every command path with its help text, depth first.
fn tree() -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        for sub in subcommands(&text) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        out.push((path, text));
    }
    out
}

/// The back-quoted spans of `text`.
fn spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn is_word(w: &str) -> bool {
    w.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && w.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The command words a span names, or `None` when it does not read like a command. `names`:
/// every command name in the tree.
fn command_words(span: &str, names: &BTreeSet<&str>) -> Option<Vec<String>> {
    let words: Vec<&str> = span.split(' ').collect();
    if words.first() == Some(&"smartpos") {
        // `smartpos host --ledger FILE`: the command words end at the first option or value.
        return Some(
            words[1..]
                .iter()
                .take_while(|w| is_word(w))
                .map(|w| (*w).to_owned())
                .collect(),
        );
    }
    if !words.iter().all(|w| is_word(w)) || (words.len() < 2 && !names.contains(words[0])) {
        return None;
    }
    Some(words.iter().map(|w| (*w).to_owned()).collect())
}

#[test]
fn every_help_names_only_commands_that_exist() {
    let tree = tree();
    let paths: BTreeSet<Vec<String>> = tree.iter().map(|(p, _)| p.clone()).collect();
    assert!(
        paths.contains(&vec!["terminal".to_owned(), "sale".to_owned()]),
        "the walk found the terminal commands: {paths:?}"
    );
    let names: BTreeSet<&str> = paths
        .iter()
        .filter_map(|p| p.last().map(String::as_str))
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (path, text) in &tree {
        for span in spans(text) {
            let Some(words) = command_words(&span, &names) else {
                continue;
            };
            checked += 1;
            // Relative to the root, to `terminal`, or to this command and its parents.
            let mut bases: Vec<Vec<String>> = vec![Vec::new(), vec!["terminal".to_owned()]];
            bases.extend((0..=path.len()).map(|n| path[..n].to_vec()));
            let found = bases.iter().any(|base| {
                let mut p = base.clone();
                p.extend(words.iter().cloned());
                paths.contains(&p)
            });
            if !found {
                missing.push(format!("`smartpos {}` names `{span}`", path.join(" ")));
            }
        }
    }
    assert!(checked > 0, "no command references were checked");
    assert!(
        missing.is_empty(),
        "help texts name commands that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn policy_show_prints_the_refund_policy() {
    let dir = common::tmp("policy-show");
    let data = dir.join("t1");
    common::init_terminal(&data, "127.0.0.1:9", &[]);
    let v = common::term_ok(&data, &["policy", "show"]);
    assert_eq!(v["refund_policy"]["max_days_since_original"], 30, "{v}");
    assert_eq!(v["require_login"], true, "{v}");
}

#[test]
fn explain_of_a_code_in_no_table_says_the_sale_is_reversed() {
    let dir = common::tmp("explain-unknown");
    let data = dir.join("t1");
    common::init_terminal(&data, "127.0.0.1:9", &[]);
    let v = common::term_ok(&data, &["explain", "--code", "ZZ"]);
    assert_eq!(v["code"], "host.unknown_code_reversed", "{v}");
    assert_eq!(v["money_state"], "reversal_pending", "{v}");
    let text = v["message_en"].as_str().unwrap_or_default();
    assert!(
        text.contains("approval") && text.contains("revers"),
        "{text}"
    );
    // A refund is an advice: the engine records an unknown answer as a decline.
    let v = common::term_ok(&data, &["explain", "--code", "ZZ", "--kind", "refund"]);
    assert_eq!(v["code"], "host.unknown_code", "{v}");
}

#[test]
fn explain_97_says_sign_in_again() {
    let dir = common::tmp("explain-97");
    let data = dir.join("t1");
    common::init_terminal(&data, "127.0.0.1:9", &[]);
    let v = common::term_ok(&data, &["explain", "--code", "97"]);
    let first = &v["next_steps"][0]["en"];
    assert!(
        first.as_str().unwrap_or_default().contains("Sign in"),
        "the first step is a sign-in: {v}"
    );
    assert_eq!(v["retry"], "safe_to_retry", "{v}");
}
