//! The documentation's code says what the code does (issue 22): the Android guide's quick start
//! is the Kotlin file the Android sample's verification build compiles and runs, the Kotlin
//! README's example is the JVM test that runs it, the Kotlin README names every exception the
//! bindings throw, and the minimum Android version is the same everywhere it is stated.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first ```` ```kotlin ```` block after `heading` in a Markdown text.
fn kotlin_block_after(markdown: &str, heading: &str) -> String {
    let at = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &markdown[at..];
    let start = rest.find("```kotlin\n").expect("a kotlin block") + "```kotlin\n".len();
    let len = rest[start..].find("```").expect("closed block");
    rest[start..start + len].to_owned()
}

#[test]
fn android_guide_quick_start_is_the_file_the_sample_build_compiles() {
    let guide = read("docs/android.md");
    let file =
        read("android-sample/app/src/sdk/kotlin/com/smartpos/sample/quickstart/QuickStart.kt");
    let block = kotlin_block_after(&guide, "## 8. Quick start");
    assert!(
        block == file,
        "docs/android.md's quick start differs from QuickStart.kt: copy the file into the block"
    );
    // ... and the sample's tests run it.
    let test = read(
        "android-sample/app/src/sdkTest/kotlin/com/smartpos/sample/quickstart/QuickStartTest.kt",
    );
    assert!(test.contains("openAndSignIn(") && test.contains("sell("));
}

#[test]
fn kotlin_readme_example_is_the_test_that_runs_it() {
    let readme = read("bindings/kotlin/README.md");
    let block = kotlin_block_after(&readme, "## Using it");
    let test = read("bindings/kotlin/src/test/kotlin/com/smartpos/sdk/ReadmeExampleTest.kt");
    let begin = test
        .find("// README example begins\n")
        .expect("begin marker")
        + "// README example begins\n".len();
    let end = test
        .find("        // README example ends")
        .expect("end marker");
    let body: String = test[begin..end]
        .lines()
        .map(|l| l.strip_prefix("        ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        body == block,
        "bindings/kotlin/README.md's example differs from ReadmeExampleTest.kt:\n{block}\n---\n{body}"
    );
}

#[test]
fn kotlin_readme_names_every_exception() {
    let errors = read("bindings/ffi/src/error.rs");
    let start = errors
        .find("pub enum SmartPosError {")
        .expect("SmartPosError");
    let end = start + errors[start..].find("\n}\n").expect("end of enum");
    // Variants: four-space indented names followed by ` {` or `,`.
    let variants: Vec<&str> = errors[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter_map(|l| l.split([' ', ',']).next())
        .collect();
    assert!(variants.len() >= 10, "{variants:?}");
    let readme = read("bindings/kotlin/README.md");
    let list_at = readme
        .find("Errors are the sealed `SmartPosException` (")
        .expect("the exception list");
    let list = &readme[list_at..list_at + readme[list_at..].find(')').expect("end of list")];
    let missing: Vec<&&str> = variants
        .iter()
        .filter(|v| !list.split([' ', ',', '(', '\n']).any(|w| w == **v))
        .collect();
    assert!(
        missing.is_empty(),
        "bindings/kotlin/README.md's SmartPosException list misses {missing:?}"
    );
}

#[test]
fn minimum_android_version_is_stated_the_same_everywhere() {
    let gradle = read("bindings/android/build.gradle.kts");
    let min_sdk: u32 = gradle
        .lines()
        .find_map(|l| l.trim().strip_prefix("minSdk = "))
        .expect("minSdk in bindings/android/build.gradle.kts")
        .trim()
        .parse()
        .unwrap();
    let script = read("scripts/build-android.sh");
    assert!(
        script.contains(&format!("API=\"${{ANDROID_API:-{min_sdk}}}\"")),
        "scripts/build-android.sh builds for another API level than minSdk {min_sdk}"
    );
    let guide = read("docs/android.md");
    assert!(
        guide.contains(&format!("**minSdk {min_sdk}**")),
        "docs/android.md"
    );
    let readme = read("README.md");
    assert!(readme.contains(&format!("(API {min_sdk})")), "README.md");
}
