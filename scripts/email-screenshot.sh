#!/usr/bin/env bash
# email-screenshot.sh OUT.png [ISSUE] — render the full variant of an issue
# (default: the November 2025 sample) with `tayori compose preview` and take a
# full-page screenshot of its HTML part in headless Chromium, 800 px wide.
#
# Needs Debian's chromium and fonts-noto-cjk (without a CJK font, Japanese
# renders as boxes); when they are missing and the script runs as root, it
# installs them with apt-get. Environment: CHROMIUM (browser binary), WIDTH
# (default 800), TAYORI_* (sender details; example values by default).
set -euo pipefail

out=${1:?usage: scripts/email-screenshot.sh OUT.png [ISSUE]}
issue=${2:-testdata/aisi-monthly-2025-11.txt}
width=${WIDTH:-800}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need=()
command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || need+=(fonts-noto-cjk)
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "email-screenshot: missing ${need[*]}; install them: sudo apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	echo "email-screenshot: installing ${need[*]}" >&2
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
chromium=${CHROMIUM:-chromium}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Example sender details unless the caller configured real ones.
export TAYORI_DATA_DIR=${TAYORI_DATA_DIR:-$work/data}
export TAYORI_BASE_URL=${TAYORI_BASE_URL:-https://news.example.jp}
export TAYORI_FROM=${TAYORI_FROM:-AI政策動向 <newsletter@news.example.jp>}
export TAYORI_POSTAL_ADDRESS=${TAYORI_POSTAL_ADDRESS:-〒100-0013 東京都千代田区霞が関1-1-1}
export TAYORI_CONTACT=${TAYORI_CONTACT:-https://news.example.jp/contact}
export TAYORI_SECRET=${TAYORI_SECRET:-screenshot:0123456789abcdef0123456789abcdef}
export TAYORI_LOG_LEVEL=${TAYORI_LOG_LEVEL:-warn}

go run ./cmd/tayori compose preview "$issue" --name "山田 太郎" --out "$work/preview" >&2

browser() {
	"$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --hide-scrollbars \
		--user-data-dir="$(mktemp -d -p "$work")" "$@" 2>/dev/null
}

# Measure the page height in a copy that reports it in its title (the copy
# has a script; the email itself has none).
sed 's|</body>|<script>document.title="h="+document.documentElement.scrollHeight</script></body>|' \
	"$work/preview/preview.html" >"$work/measure.html"
height=$(browser --window-size="$width,800" --dump-dom "file://$work/measure.html" |
	sed -n 's|.*<title>h=\([0-9]*\)</title>.*|\1|p' | head -n1)
height=${height:-6000}

mkdir -p "$(dirname "$out")"
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
browser --window-size="$width,$height" --screenshot="$abs_out" "file://$work/preview/preview.html"
test -s "$abs_out"
echo "email-screenshot: wrote $out (${width}x${height})" >&2
