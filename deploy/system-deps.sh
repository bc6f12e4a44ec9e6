#!/usr/bin/env bash
# Installs the Debian packages the local stack and the tests need, only those missing.
# Usage: deploy/system-deps.sh [run|test|bench]   (test also needs a browser for the page tests, and
# axe-core, the accessibility checker they inject into every page, from the npm registry; bench
# needs wrk, the load generator of bench/write_path.py)
set -euo pipefail
mode="${1:-run}"
want=(redis-server)
[ "$mode" = test ] && want+=(chromium npm)
[ "$mode" = bench ] && want+=(wrk)

missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
for pkg in "${want[@]}"; do
  case "$pkg" in
    redis-server) command -v redis-server >/dev/null || missing+=(redis-server) ;;
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    npm) command -v npm >/dev/null || missing+=(npm) ;;
    wrk) command -v wrk >/dev/null || missing+=(wrk) ;;
  esac
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/integration/profiles/pages/test_pages_browser.py reads it from here (AXE_CORE_JS overrides).
if [ "$mode" = test ]; then
  cache="$(cd "$(dirname "$0")/.." && pwd)/.cache/npm"
  if [ ! -f "$cache/node_modules/axe-core/axe.min.js" ]; then
    echo "installing axe-core into $cache"
    npm install --prefix "$cache" --no-audit --no-fund --silent axe-core@4 >/dev/null
  fi
fi
