"""One error family: every error and warning the library raises on purpose is a RasteretError or a
RasteretWarning, defined in (and importable from) ``rasteret_core.errors``."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import rasteret_core.errors as errors
from rasteret_core.errors import RasteretError, RasteretWarning

LIBRARY = Path(errors.__file__).parent
SOURCES = {p: ast.parse(p.read_text()) for p in LIBRARY.rglob("*.py") if "testing" not in p.parts}
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}
# control flow inside one module, never seen by callers: a retry signal, a "need more bytes" signal
INTERNAL_SIGNALS = {"_Retry", "NeedBytes"}
# what Python's protocols ask for: a module __getattr__'s AttributeError, a command's exit status
PROTOCOL = {"AttributeError", "SystemExit", "NotImplementedError", "StopIteration", "StopAsyncIteration"}


def test_every_class_in_errors_is_a_rasteret_error_or_warning():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) > 30
    assert [c.__name__ for c in classes if not issubclass(c, (RasteretError, RasteretWarning))] == []


def test_no_error_or_warning_class_is_defined_outside_errors():
    defined = [f"{path.relative_to(LIBRARY)}:{node.name}" for path, tree in SOURCES.items() if path.name != "errors.py"
               for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
               and node.name not in INTERNAL_SIGNALS
               and any(getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception", "Warning")) for b in node.bases)]
    assert defined == []


def test_the_library_raises_no_bare_builtin_error():
    bare = []
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in BUILTIN_EXCEPTIONS - PROTOCOL:
                    bare.append(f"{path.relative_to(LIBRARY)}:{node.lineno} {node.exc.func.id}")
    assert bare == []


def test_argument_errors_keep_their_builtin_bases():
    # existing `except ValueError` / `except TypeError` handlers keep working
    assert issubclass(errors.ArgumentError, ValueError)
    assert issubclass(errors.ArgumentTypeError, TypeError)
    assert issubclass(errors.StorageError, OSError) and issubclass(errors.CollectionExistsError, FileExistsError)
