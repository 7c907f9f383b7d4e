"""Atomic writes (a kill at any moment leaves either the old file or the new one, never a torn one)
and bounded JSON reads that fail with one line saying how to fix the file.

Every JSON file paretone reads goes through ``read_json``: its size and nesting depth are bounded, so
a hostile or corrupted file is a one-line error instead of a memory blow-up or a RecursionError.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from paretone.errors import ConfigError

MAX_JSON_BYTES = 256 * 2**20  # device profiles of large teachers reach tens of MB
MAX_JSON_DEPTH = 32  # paretone's own files nest at most 6 levels


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # created as open() creates files (0o666 less the umask), not owner-only as mkstemp would
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    mode = tmp.stat().st_mode & 0o777  # what the umask left; writers that recreate the file lose it
    try:
        yield tmp
        if tmp.stat().st_mode & 0o777 != mode:
            os.chmod(tmp, mode)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Run ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (a recursive walk would fail where parsing did not)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_json(text: str, source: str, *, fix: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``text``; ConfigError naming ``source`` and ``fix`` if it is not JSON or nests too deep."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc}); {fix}") from None
    except RecursionError:
        raise ConfigError(f"{source}: JSON nested too deeply to be a paretone file; {fix}") from None
    if _depth(data) > max_depth:
        raise ConfigError(f"{source}: JSON nested deeper than {max_depth} levels; {fix}")
    return data


def read_json(
    path: str | os.PathLike[str], *, missing: str, fix: str, max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """A JSON file, bounded in size and depth; ConfigError with ``missing`` or ``fix`` otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ConfigError(f"{path}: a folder, not a JSON file; {fix}")
        if size > max_bytes:
            raise ConfigError(f"{path}: {size / 1e6:.0f} MB is too large for a paretone JSON file; {fix}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; {missing}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; {fix}") from None
    except PermissionError:
        raise ConfigError(f"{path}: not readable (permission denied); fix its permissions") from None
    return parse_json(text, str(path), fix=fix)


def read_format_json(
    path: str | os.PathLike[str], file_format: str, *, missing: str, fix: str
) -> dict[str, Any]:
    """A JSON object whose ``format`` field is ``file_format``; ConfigError naming the fix otherwise.

    ``missing``: what to do when the file does not exist; ``fix``: how to replace a broken one.
    """
    data = read_json(path, missing=missing, fix=fix)
    if not isinstance(data, dict) or data.get("format") != file_format:
        raise ConfigError(f"{path}: not a {file_format} file; {fix}")
    return data
