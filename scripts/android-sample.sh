#!/usr/bin/env bash
# JVM verification of the Android sample app (no Android SDK or Gradle on these machines):
# compiles the app's Kotlin sources (app/src/main/kotlin) against the Android framework
# (org.robolectric:android-all) and runs its Robolectric tests offline
# (android-sample/verify/pom.xml). Needs JDK 17 + Maven; Maven Central for the first run.
#
# Not compiled here yet: app/src/sdk/kotlin (the bridge to the SDK's Kotlin bindings and the
# Application that wires it), until bindings/kotlin publishes an artifact to depend on.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v java >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless
command -v mvn >/dev/null 2>&1 || need_debs maven

step "android-sample: compile against android-all, Robolectric tests (offline)"
LOG="$(mktemp -t android-sample-mvn.XXXXXX.log)"
set +e
mvn -B -f android-sample/verify/pom.xml test >"$LOG" 2>&1
status=$?
set -e
grep -E 'Tests run:|BUILD|\[ERROR\]' "$LOG" | tail -n 40 || true
if [ "$status" -ne 0 ]; then
    echo "android-sample verification failed (full log: $LOG)"
    exit "$status"
fi
rm -f "$LOG"
