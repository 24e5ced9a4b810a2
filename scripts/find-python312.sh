#!/usr/bin/env sh
# Print a working Python 3.12+ interpreter (TorchGeo 0.10 needs 3.12), or nothing.
for candidate in python3.12 python3.13 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 \
                 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
        command -v "$candidate" || echo "$candidate"
        exit 0
    fi
done
