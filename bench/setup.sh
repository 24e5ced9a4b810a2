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

V312="$CACHE/venv312"
if ! stamp_ok "$V312/.rasteret-stamp" "rasteret==0.4.1"; then
  P312="$(find_py312)"
  if [ -z "$P312" ]; then
    echo "NOTE: no Python 3.12 found (set BENCH_PYTHON312); Rasteret 0.4.1 will be skipped"
  else
    rm -rf "$V312"
    if "$P312" -m venv "$V312" && "$V312/bin/python" -m pip install -q "rasteret==0.4.1"; then
      echo "rasteret==0.4.1" > "$V312/.rasteret-stamp"
    else
      echo "NOTE: could not install rasteret 0.4.1 in a Python 3.12 virtualenv; it will be skipped"
    fi
  fi
fi
# lazycogs (a load peer) also needs Python >= 3.12; dask for its chunked arrays
VLAZY="$CACHE/venv-lazycogs"
# rustac 0.9.17 embeds DuckDB 1.5.5, the version of the newest extension wheels it loads (DuckDB
# would otherwise download the extensions at run time)
LAZY_REQ="lazycogs==0.7.0 rustac==0.9.17 duckdb-extension-spatial==1.5.5 duckdb-extension-icu==1.5.5 duckdb-extension-parquet==1.5.5 dask>=2025.1"
if ! stamp_ok "$VLAZY/.stamp" "$LAZY_REQ"; then
  P312="${P312:-$(find_py312)}"
  if [ -z "$P312" ]; then
    echo "NOTE: no Python 3.12 found (set BENCH_PYTHON312); lazycogs will be skipped"
  else
    rm -rf "$VLAZY"
    if "$P312" -m venv "$VLAZY" && "$VLAZY/bin/python" -m pip install -q $LAZY_REQ; then
      echo "$LAZY_REQ" > "$VLAZY/.stamp"
    else
      echo "NOTE: could not install lazycogs in a Python 3.12 virtualenv; it will be skipped"
    fi
  fi
fi
exit 0
