#!/usr/bin/env bash
# Screenshots of built pages in headless Chromium, at a desktop and a phone
# width, to check how equations, tables, figures and code render. Build the
# site first (bash .ci/docs.sh).
#
#   bash docs/screenshots.sh [OUT_DIR] [PAGE ...]
#
# PAGE is a path under docs/_build/html without ".html" (default: the
# landing page, the Adam page, the policies page, the benchmarks page, the
# full-batch page and the lecture lab). Each page is taken at every width of
# WIDTHS (default "1280 420"), HEIGHT pixels tall (default 6000: the page
# from its top),
# as OUT_DIR/PAGE-WIDTH.png. Scrollbars are drawn, so that a table that
# scrolls inside the column shows its scrollbar. Needs Debian's chromium
# package (apt-get install -y chromium). Reads no network: MathJax is served
# from the built site.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/_build/screenshots}
shift || true
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
  pages=(index optimizers/adam callbacks benchmarks full_batch lab)
fi
html=$(pwd)/docs/_build/html
mkdir -p "$out"
for page in "${pages[@]}"; do
  file="$html/$page.html"
  if [ ! -f "$file" ]; then
    echo "no $file: build the site first (bash .ci/docs.sh)" >&2
    exit 1
  fi
  for width in ${WIDTHS:-1280 420}; do
    profile=$(mktemp -d)
    png="$out/$(echo "$page" | tr / _)-$width.png"
    # --virtual-time-budget lets MathJax typeset before the picture is taken.
    chromium --headless --no-sandbox --disable-gpu --disable-quic \
      --no-first-run --disable-background-networking --disable-component-update \
      --disable-sync --user-data-dir="$profile" \
      --virtual-time-budget=10000 --window-size="$width,${HEIGHT:-6000}" \
      --screenshot="$png" "file://$file" 2>/dev/null
    rm -rf "$profile"
    echo "$png"
  done
done

# Wide tables: with selenium installed (the test extra), every table that is
# wider than the content column must scroll inside it; it is scrolled to its
# right end and the screen taken again as OUT_DIR/PAGE-WIDTH-tableN-end.png,
# so that the last column can be seen.
python - "$out" "$html" "${WIDTHS:-1280 420}" "${pages[@]}" <<'PY' || exit 1
import sys

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    print("selenium is not installed: wide tables not checked")
    sys.exit(0)

out, html, widths, *pages = sys.argv[1:]
clipped = []
for width in map(int, widths.split()):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu"):
        options.add_argument(flag)
    # Debian's driver, named: selenium then looks nothing up on the network.
    driver = webdriver.Chrome(
        service=Service("/usr/bin/chromedriver"), options=options
    )
    # The exact width (a window is at least 500 px wide).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        for page in pages:
            driver.get(f"file://{html}/{page}.html")
            wrappers = driver.find_elements("css selector", ".table-wrapper")
            for n, wrapper in enumerate(wrappers):
                scroll, client = (
                    driver.execute_script(f"return arguments[0].{key}", wrapper)
                    for key in ("scrollWidth", "clientWidth")
                )
                if scroll <= client:
                    continue
                style = driver.execute_script(
                    "return getComputedStyle(arguments[0]).overflowX", wrapper
                )
                name = f"{page.replace('/', '_')}-{width}-table{n}-end.png"
                driver.execute_script(
                    "arguments[0].scrollIntoView({behavior: 'instant'});"
                    "arguments[0].scrollLeft = arguments[0].scrollWidth", wrapper
                )
                driver.save_screenshot(f"{out}/{name}")
                print(f"{page} at {width} px: table {n} is {scroll} px in a "
                      f"{client} px column, overflow-x {style}: {out}/{name}")
                if style not in ("auto", "scroll"):
                    clipped.append(f"{page} at {width} px: table {n}")
    finally:
        driver.quit()
if clipped:
    sys.exit(f"clipped tables: {clipped}")
PY
