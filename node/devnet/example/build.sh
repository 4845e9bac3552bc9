#!/bin/sh
# The devnet's example build: POSIX sh and coreutils only.
# It would be unreproducible without concur's normalization: it embeds the
# build date, the build path and the order in which the directory is listed.
set -eu
mkdir -p out
{
  echo "greeting tool, built $(date -u -d "@${SOURCE_DATE_EPOCH}" '+%Y-%m-%d %H:%M:%S UTC')"
  echo "built in $(pwd) by $(id -un 2>/dev/null || echo "$USER") on $(hostname)"
  echo "sources:"
  for f in src/*; do echo "  $f $(wc -c < "$f") bytes"; done
} > out/BUILDINFO
cat src/*.txt | tr 'a-z' 'A-Z' > out/greeting.txt
sha256sum out/greeting.txt out/BUILDINFO | sed 's#out/##' > out/SHA256SUMS
echo "build finished: $(wc -c < out/greeting.txt) bytes of greeting"
