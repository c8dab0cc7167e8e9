#!/usr/bin/env bash
# Builds and checks the Kotlin bindings (bindings/kotlin, Maven): cargo builds smartpos-ffi
# (feature testkit), uniffi-bindgen generates the Kotlin, JUnit 5 runs against the in-process
# host simulator. Generated Kotlin lives under bindings/kotlin/target (never committed).
#
#   scripts/kotlin.sh          # mvn install (JUnit tests included); prints the Surefire counts
#   scripts/kotlin.sh demo     # the `smartpos demo` session through the Kotlin bindings
#   scripts/kotlin.sh bench    # FFI crossings per sale and cost per call (release build)
#
# The native library: with SMARTPOS_SHARED_BUILD=1 (scripts/test.sh sets it) cargo runs the
# workspace's own test build (`cargo test --workspace --no-run` with WORKSPACE_FEATURES, a no-op
# after the test step) and Maven takes smartpos-ffi and uniffi-bindgen from it (-Dcargo.skip),
# so no crate is compiled twice in one test run. Otherwise Maven builds just smartpos-ffi
# (`cargo build -p smartpos-ffi --features testkit`: less to build for a demo on a fresh clone).
#
# Needs JDK 17 and Maven (installed from Debian when missing) and Maven Central (the first run
# downloads plugins and dependencies into ~/.m2; with the Android sample's, about 0.7 GB).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

need_rust
command -v mvn >/dev/null 2>&1 || need_debs maven
command -v javac >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless

# Share cargo's target directory with the rest of the workspace (gitignored /target).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
POM="$ROOT/bindings/kotlin/pom.xml"
MVN=(mvn_plain -f "$POM" "-Dcargo.target.dir=$CARGO_TARGET_DIR")
if [ "${SMARTPOS_SHARED_BUILD:-0}" = 1 ] && [ "${1:-test}" != bench ]; then
    step "smartpos-ffi and uniffi-bindgen from the workspace's test build (cargo test --no-run)"
    cargo test --workspace --locked "${WORKSPACE_FEATURES[@]}" --no-run
    MVN+=(-Dcargo.skip=true "-Dnative.dir=$CARGO_TARGET_DIR/debug/deps")
fi

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
        step "Kotlin bindings: uniffi-bindgen, JUnit 5, installed as com.smartpos:smartpos-sdk-jvm (mvn install)"
        status=0
        "${MVN[@]}" install || status=$?
        surefire_counts
        steps_summary
        exit "$status"
        ;;
    demo)
        step "Kotlin demo: the smartpos demo session through the bindings (cargo build of smartpos-ffi, Maven)"
        "${MVN[@]}" -q test-compile exec:java \
            -Dexec.mainClass=com.smartpos.sdk.tools.DemoKt -Dexec.classpathScope=test
        steps_summary
        ;;
    bench)
        step "Kotlin benchmark (release native library)"
        "${MVN[@]}" -q -Dcargo.profile=release -Dcargo.profile.dir=release test-compile exec:java \
            -Dexec.mainClass=com.smartpos.sdk.tools.BenchKt -Dexec.classpathScope=test \
            "-Dbench.sales=${2:-300}" "-Dbench.calls=${3:-100000}"
        steps_summary
        ;;
    *)
        echo "usage: $0 [test|demo|bench]" >&2
        exit 2
        ;;
esac
