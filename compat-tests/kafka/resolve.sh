#!/usr/bin/env bash
# Resolves Apache Kafka's jars (pom.xml next to this script) from Maven Central into
# compat-tests/.kafka/<version>/lib, once: a folder that already holds the version's jars is
# left alone, so a second run downloads nothing. Prints the lib folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
lib="$here/../.kafka/$version/lib"
stamp="$lib/.resolved"
if [ ! -f "$stamp" ] || [ "$here/pom.xml" -nt "$stamp" ]; then
  command -v mvn >/dev/null || { echo "resolve.sh: mvn is needed (Maven 3, Java 17+)" >&2; exit 1; }
  rm -rf "$lib.tmp"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib.tmp" >&2
  rm -rf "$lib" && mv "$lib.tmp" "$lib" && touch "$stamp"
fi
echo "$lib"
