#!/usr/bin/env bash
# Builds and checks the Kotlin bindings (bindings/kotlin, Maven): cargo builds smartpos-ffi
# (feature testkit), uniffi-bindgen generates the Kotlin, JUnit 5 runs against the in-process
# host simulator. Generated Kotlin lives under bindings/kotlin/target (never committed).
#
#   scripts/kotlin.sh          # mvn test; prints the Surefire counts
#   scripts/kotlin.sh demo     # the `smartpos demo` session through the Kotlin bindings
#   scripts/kotlin.sh bench    # FFI crossings per sale and cost per call (release build)
#
# Needs JDK 17 and Maven (installed from Debian when missing) and Maven Central.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

need_rust
command -v mvn >/dev/null 2>&1 || need_debs maven
command -v javac >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless

# Share cargo's target directory with the rest of the workspace (gitignored /target).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
POM="$ROOT/bindings/kotlin/pom.xml"
MVN=(mvn -B -f "$POM" "-Dcargo.target.dir=$CARGO_TARGET_DIR")

surefire_counts() {
    python3 - "$ROOT/bindings/kotlin/target/surefire-reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
tm = 0.0
for path in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(path).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0))
    e += int(r.get("errors", 0)); s += int(r.get("skipped", 0)); tm += float(r.get("time", 0))
print(f"Surefire: {t} tests, {f} failures, {e} errors, {s} skipped, {tm:.1f} s in tests")
PY
}

case "${1:-test}" in
    test)
        step "Maven dependencies (Maven Central)"
        "${MVN[@]}" -q dependency:resolve dependency:resolve-plugins >/dev/null
        step "Kotlin bindings: cargo build, uniffi-bindgen, JUnit 5 (mvn test)"
        status=0
        "${MVN[@]}" test || status=$?
        surefire_counts
        exit "$status"
        ;;
    demo)
        step "Kotlin demo: the smartpos demo session through the bindings"
        "${MVN[@]}" -q test-compile exec:java \
            -Dexec.mainClass=com.smartpos.sdk.tools.DemoKt -Dexec.classpathScope=test
        ;;
    bench)
        step "Kotlin benchmark (release native library)"
        "${MVN[@]}" -q -Dcargo.profile=release -Dcargo.profile.dir=release test-compile exec:java \
            -Dexec.mainClass=com.smartpos.sdk.tools.BenchKt -Dexec.classpathScope=test \
            "-Dbench.sales=${2:-300}" "-Dbench.calls=${3:-100000}"
        ;;
    *)
        echo "usage: $0 [test|demo|bench]" >&2
        exit 2
        ;;
esac
