#!/usr/bin/env bash
# Screenshots of built pages in headless Chromium, to check how equations,
# tables, figures and code render. Build the site first (.ci/docs.sh).
#
#   bash docs/screenshots.sh [OUT_DIR] [PAGE ...]
#
# PAGE is a path under docs/_build/html without ".html" (default: the Adam
# page, the lecture map and the optimizer API page). Needs Debian's chromium
# package (apt-get install -y chromium). Reads no network: MathJax is served
# from the built site.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/_build/screenshots}
shift || true
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
  pages=(optimizers/adam lecture_map api/optimizers)
fi
html=$(pwd)/docs/_build/html
mkdir -p "$out"
for page in "${pages[@]}"; do
  file="$html/$page.html"
  if [ ! -f "$file" ]; then
    echo "no $file: build the site first (bash .ci/docs.sh)" >&2
    exit 1
  fi
  profile=$(mktemp -d)
  png="$out/$(echo "$page" | tr / _).png"
  # --virtual-time-budget lets MathJax typeset before the picture is taken.
  chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir="$profile" --hide-scrollbars \
    --virtual-time-budget=10000 --window-size="${WINDOW_SIZE:-1280,2000}" \
    --screenshot="$png" "file://$file" 2>/dev/null
  rm -rf "$profile"
  echo "$png"
done
