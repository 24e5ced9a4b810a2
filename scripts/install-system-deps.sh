#!/usr/bin/env bash
# Debian packages the test-suite needs: PostgreSQL 15 with PostGIS, for a real STAC API
# (stac-fastapi-pgstac) on 127.0.0.1, and Chromium, to look at the Dagster UI headless.
# Idempotent; without root it only says what is missing, and the tests that need them skip
# with that reason (the UI test then checks GraphQL only).
set -euo pipefail

packages=(postgresql postgresql-15-postgis-3 chromium)
missing=()
for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "install-system-deps: missing ${missing[*]} and no root: STAC API tests will be skipped" >&2
        exit 0
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: installed ${missing[*]}"
