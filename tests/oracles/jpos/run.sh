#!/usr/bin/env bash
# Runs the jPOS oracle (JposOracle.java) with jPOS 2.1.10 from Maven Central:
#   tests/oracles/jpos/run.sh golden|check FILE|bench ITERATIONS
# The first run downloads jPOS and its dependencies (about 15 MB) into ~/.m2 and compiles the
# oracle into tests/oracles/jpos/target (gitignored); later runs reuse both.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="$HERE/target"
CP_FILE="$TARGET/classpath.txt"
SRC="$HERE/src/main/java/smartpos/oracle/JposOracle.java"
CLASS="$TARGET/classes/smartpos/oracle/JposOracle.class"
command -v mvn >/dev/null 2>&1 || { echo "jpos oracle: Maven is missing (apt-get install maven)" >&2; exit 2; }
if [ ! -s "$CP_FILE" ] || [ "$HERE/pom.xml" -nt "$CP_FILE" ]; then
    mkdir -p "$TARGET"
    mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" dependency:build-classpath \
        -Dmdep.outputFile="$CP_FILE" >&2
fi
if [ ! -f "$CLASS" ] || [ "$SRC" -nt "$CLASS" ]; then
    mkdir -p "$TARGET/classes"
    javac --release 17 -d "$TARGET/classes" -cp "$(cat "$CP_FILE")" "$SRC"
fi
exec java -cp "$TARGET/classes:$(cat "$CP_FILE")" smartpos.oracle.JposOracle "$@"
