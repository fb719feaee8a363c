#!/usr/bin/env bash
# Make sure headless Chromium and Japanese fonts are present for the web
# package's browser tests (web/browser_test.go) and screenshots.
#
# Installs Debian's chromium and fonts-noto-cjk with apt-get when they are
# missing and we run as root; otherwise fails with what to install.
# Prints the path of the Chromium binary on success.
set -euo pipefail

want=()
bin=""
for c in /usr/bin/chromium /usr/bin/chromium-browser; do
	if [ -x "$c" ]; then bin=$c; break; fi
done
[ -n "$bin" ] || want+=(chromium)
if ! dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'install ok installed'; then
	want+=(fonts-noto-cjk)
fi

if [ ${#want[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "chromium.sh: the browser tests need: ${want[*]}" >&2
		echo "  install them with: sudo apt-get install -y ${want[*]}" >&2
		exit 1
	fi
	echo "chromium.sh: installing ${want[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "${want[@]}" >&2; then
		apt-get -o DPkg::Lock::Timeout=120 update >&2
		apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "${want[@]}" >&2
	fi
	for c in /usr/bin/chromium /usr/bin/chromium-browser; do
		if [ -x "$c" ]; then bin=$c; break; fi
	done
fi
[ -n "$bin" ] || { echo "chromium.sh: chromium is still missing" >&2; exit 1; }
echo "$bin"
