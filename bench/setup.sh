#!/bin/sh
# Installs what the benchmark needs; called by `make bench` and `make bench-quick`.
#   $1: the project's Python (its virtualenv gets matplotlib and the optional async-geotiff peer).
# Rasteret 0.4.1 and lazycogs need Python >= 3.12: each gets its own virtualenv in bench/.cache
# (venv312, venv-lazycogs).
# Optional peers that fail to install are skipped by the benchmark with a printed note.
set -u
PY="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="$HERE/.cache"
mkdir -p "$CACHE"

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

REQ_SUM="$(cat "$HERE/requirements.txt" "$HERE/requirements-peers.txt" | cksum)"
if ! stamp_ok "$CACHE/.deps-stamp" "$REQ_SUM"; then
  "$PY" -m pip install -q -r "$HERE/requirements.txt" || exit 1
  if "$PY" -m pip install -q -r "$HERE/requirements-peers.txt"; then
    echo "$REQ_SUM" > "$CACHE/.deps-stamp"
  else
    echo "NOTE: async-geotiff/obstore/odc-stac did not install; those peers will be skipped"
  fi
  # stackstac pins pandas<3 although it runs on pandas 3: installed without its dependencies
  # (dask, xarray, pyproj, rasterio are the project's own) so it cannot downgrade pandas
  "$PY" -m pip install -q --no-deps "stackstac>=0.5" || echo "NOTE: stackstac did not install; that peer will be skipped"
fi

is_py312() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }

find_py312() {
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  # a pyenv shim on PATH may refuse to run, so every candidate is tried
  for p in "${BENCH_PYTHON312:-}" "$root"/versions/3.12*/bin/python3.12 "$(command -v python3.12 2>/dev/null)"; do
    if [ -n "$p" ] && [ -x "$p" ] && is_py312 "$p"; then echo "$p"; return; fi
  done
}

# py312_venv FOLDER NAME REQUIREMENTS...: a Python 3.12 virtualenv holding REQUIREMENTS, made
# again only when they change; NAME is what the benchmark skips without it
py312_venv() {
  dir="$1"; name="$2"; shift 2
  if stamp_ok "$dir/.stamp" "$*"; then return; fi
  P312="${P312:-$(find_py312)}"
  if [ -z "$P312" ]; then
    echo "NOTE: no Python 3.12 found (set BENCH_PYTHON312); $name will be skipped"
    return
  fi
  rm -rf "$dir"
  if "$P312" -m venv "$dir" && "$dir/bin/python" -m pip install -q "$@"; then
    echo "$*" > "$dir/.stamp"
  else
    echo "NOTE: could not install $name in a Python 3.12 virtualenv; it will be skipped"
  fi
}

py312_venv "$CACHE/venv312" "Rasteret 0.4.1" "rasteret==0.4.1"
# lazycogs (a load peer) with dask for its chunked arrays; rustac 0.9.17 embeds DuckDB 1.5.5, the
# version of the newest extension wheels it loads (DuckDB would otherwise download them at run time)
py312_venv "$CACHE/venv-lazycogs" "lazycogs" "lazycogs==0.7.0" "rustac==0.9.17" "duckdb-extension-spatial==1.5.5" \
  "duckdb-extension-icu==1.5.5" "duckdb-extension-parquet==1.5.5" "dask>=2025.1"
exit 0
