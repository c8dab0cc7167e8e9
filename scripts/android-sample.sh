#!/usr/bin/env bash
# JVM verification of the Android sample app (no Android SDK or Gradle on these machines).
#  1. The SDK's Kotlin bindings (bindings/kotlin: cargo builds smartpos-ffi with the testkit,
#     uniffi-bindgen generates the Kotlin) are installed into the local Maven repository as
#     com.smartpos:smartpos-sdk-jvm, when missing or older than their sources. In
#     scripts/test.sh, scripts/kotlin.sh has just installed them (from the workspace's own test
#     build, SMARTPOS_SHARED_BUILD=1), so this step finds them up to date.
#  2. android-sample/verify/pom.xml with -Psdk compiles every Kotlin source of the app
#     (app/src/main/kotlin and the SDK bridge app/src/sdk/kotlin) against the Android framework
#     (org.robolectric:android-all) and the bindings, then runs the Robolectric tests offline
#     (app/src/test/kotlin: NFC, printers incl. USB, BLE, keys, ViewModel; app/src/sdkTest/kotlin:
#     the bridges to the SDK's foreign traits and the ViewModel through the real core, the
#     testkit's simulated card and the host simulator on loopback). Prints the Surefire counts.
#
# Needs JDK 17, Maven, Rust (installed when missing) and Maven Central for the first run.
#   SMARTPOS_SDK_REBUILD=always|never|auto (default auto) controls step 1.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v java >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless
command -v javac >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless
command -v mvn >/dev/null 2>&1 || need_debs maven

START=$SECONDS
SDK_VERSION=0.1.0
M2="$(mvn -B -q -Dstyle.color=never help:evaluate -Dexpression=settings.localRepository -DforceStdout 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' || true)"
[ -d "$M2" ] || M2="$HOME/.m2/repository"
JAR="$M2/com/smartpos/smartpos-sdk-jvm/$SDK_VERSION/smartpos-sdk-jvm-$SDK_VERSION.jar"

bindings_stale() {
    [ -f "$JAR" ] || return 0
    [ -n "$(find bindings/ffi bindings/kotlin/src bindings/kotlin/pom.xml pure io tools Cargo.toml Cargo.lock \
        -newer "$JAR" \( -name '*.rs' -o -name '*.kt' -o -name '*.toml' -o -name '*.lock' -o -name 'pom.xml' \) \
        -not -path '*/target/*' -print -quit 2>/dev/null)" ]
}

case "${SMARTPOS_SDK_REBUILD:-auto}" in
    always) build=1 ;;
    never) build=0 ;;
    *) if bindings_stale; then build=1; else build=0; fi ;;
esac
if [ "$build" -eq 1 ]; then
    need_rust
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    step "SDK Kotlin bindings: cargo build, uniffi-bindgen, mvn install (tests: scripts/kotlin.sh)"
    shared=()
    if [ "${SMARTPOS_SHARED_BUILD:-0}" = 1 ]; then
        # The workspace's own test build (a no-op after scripts/test.sh's cargo test).
        cargo test --workspace --locked "${WORKSPACE_FEATURES[@]}" --no-run
        shared=(-Dcargo.skip=true "-Dnative.dir=$CARGO_TARGET_DIR/debug/deps")
    fi
    mvn_plain -q -f bindings/kotlin/pom.xml "-Dcargo.target.dir=$CARGO_TARGET_DIR" "${shared[@]}" -DskipTests install
else
    step "SDK Kotlin bindings: up to date ($JAR)"
fi

step "android-sample: compile app + SDK bridge against android-all and the bindings, Robolectric tests (offline)"
LOG="$(mktemp -t android-sample-mvn.XXXXXX.log)"
REPORTS="$ROOT/android-sample/verify/target/sdk/surefire-reports"
rm -rf "$REPORTS"
set +e
mvn_plain -f android-sample/verify/pom.xml -Psdk test >"$LOG"
status=$?
set -e
grep -E 'Tests run:|BUILD|\[ERROR\]' "$LOG" | tail -n 40 || true
python3 - "$REPORTS" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
tm = 0.0
for path in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(path).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0))
    e += int(r.get("errors", 0)); s += int(r.get("skipped", 0)); tm += float(r.get("time", 0))
print(f"Surefire: {t} tests, {f} failures, {e} errors, {s} skipped, {tm:.1f} s in tests")
PY
echo "android-sample: $((SECONDS - START)) s"
steps_summary
if [ "$status" -ne 0 ]; then
    echo "android-sample verification failed (full log: $LOG)"
    exit "$status"
fi
rm -f "$LOG"
