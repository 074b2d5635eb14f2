#!/usr/bin/env bash
# Debian's Chromium for the leaderboard page test (tests/test_leaderboard_page.py), driven by Playwright
# with executable_path=/usr/bin/chromium: Playwright's own browser download is not reachable here.
# Installs the Debian packages once (about 20 s, needs root or sudo); later calls return at once. The CJK
# font only makes AlignBench's Chinese text readable in the test's screenshots.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -d /usr/share/fonts/truetype/wqy ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-wqy-zenhei >/dev/null
/usr/bin/chromium --version
