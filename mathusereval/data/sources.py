"""The benchmark files' official sources, pinned by sha256, downloaded once into a cache.

Used when no data directory is given. A file is downloaded to a temporary name, checked against its pin
and only then moved into the cache; a cached file is checked again on every load. A mismatch is refused
with both digests named, and nothing is cached.

Each task module declares the pins of its own files with `pinned_source` (its upstream URL at a fixed
revision and the sha256 checked against that file), so a task's data source is in its one module and
`OFFICIAL` holds every declared pin. The one exception is built here:

- MATH (full test set, and train for the Minerva exemplars): the original release, hendrycks' ``MATH.tar``
  of 12,500 per-problem JSON files. It has no pinned revision, so the pin is on what we build from it: rows
  sorted by subject directory then problem number, the file's own keys in order plus ``unique_id`` (its
  path, e.g. ``test/algebra/1.json``), one ``json.dumps(ensure_ascii=False)`` line each. Those bytes are
  the sha256 of a build from the original tarball (checked byte-identical against two independent copies), so any
  edit of any problem is refused. The hub's ``EleutherAI/hendrycks_math`` parquet drops the file paths
  that ``unique_id`` (and MATH-500's ids) come from, so it is not used.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .files import DATA_DIR_ENV, sha256_file

CACHE_ENV = "MUE_CACHE_DIR"
MIRROR_ENV = "MUE_DATA_MIRROR"
"""A base URL serving the same relative file names (``$MUE_DATA_MIRROR/gsm8k/test.jsonl``): an internal
mirror, or a test server. Pins still apply."""
MAX_BYTES = 64 << 20  # the largest pinned file is under 1 MB; anything near this is not the file


@dataclass(frozen=True)
class OfficialFile:
    relative: str
    url: str
    sha256: str


OFFICIAL: dict[str, OfficialFile] = {}
"""Every declared pin (`pinned_source`), by relative file name."""


@dataclass(frozen=True)
class OfficialArchive:
    """An upstream archive from which pinned files are built (the pins are on the built files)."""

    relative: str
    """The archive's name under a mirror (``$MUE_DATA_MIRROR/math/MATH.tar``)."""
    url: str
    builds: dict[str, str]
    """Built file -> its pinned sha256."""
    build: Callable[[Path], dict[str, bytes]]
    max_bytes: int


_MATH_MEMBER = re.compile(r"(?:^|/)(train|test)/([a-z_]+)/(\d+)\.json$")


def build_math_jsonl(archive: Path) -> dict[str, bytes]:
    """``math/test.jsonl`` and ``math/train.jsonl`` from hendrycks' tarball (see the module docstring).
    Members are read in memory, never extracted to disk; only ``<split>/<subject>/<n>.json`` files count."""
    import tarfile  # only when an official archive is built, not on every start-up

    rows: dict[str, list[tuple[tuple[str, int], str]]] = {"test": [], "train": []}
    with tarfile.open(archive, "r:*") as tar:  # plain or compressed, as the file says
        for member in tar:
            match = _MATH_MEMBER.search(member.name)
            if match is None or not member.isfile():
                continue
            if member.size > 1 << 20:
                raise DataError(f"{archive}: {member.name} is {member.size} bytes, which no MATH problem is")
            handle = tar.extractfile(member)
            if handle is None:
                continue
            split, subject, number = match.groups()
            row = {**json.loads(handle.read()), "unique_id": f"{split}/{subject}/{number}.json"}
            rows[split].append(((subject, int(number)), json.dumps(row, ensure_ascii=False) + "\n"))
    return {f"math/{split}.jsonl": "".join(line for _, line in sorted(found)).encode() for split, found in rows.items()}


ARCHIVES = (
    OfficialArchive(
        "math/MATH.tar",
        "https://people.eecs.berkeley.edu/~hendrycks/MATH.tar",
        {
            "math/test.jsonl": "1b833f0f8869d7cb975debfe04f0697bd23455c388045ba9159e5046d37df5fa",
            "math/train.jsonl": "00aa30008a611172529ab775ed6f3af9efd32974625b19181c3ebfc724134e52",
        },
        build_math_jsonl,
        256 << 20,
    ),
)


def cache_dir() -> Path:
    raw = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "mathusereval")
    return Path(raw).expanduser() / "data"


def _url(official: OfficialFile | OfficialArchive) -> str:
    mirror = os.environ.get(MIRROR_ENV)
    return f"{mirror.rstrip('/')}/{official.relative}" if mirror else official.url


def _download(url: str, target: Path, max_bytes: int = MAX_BYTES) -> str:
    """Stream `url` into `target`; return its sha256. Network trouble raises OSError-like httpx errors."""
    import hashlib

    import httpx

    digest = hashlib.sha256()
    size = 0
    with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
        response.raise_for_status()
        with target.open("wb") as fh:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise DataError(f"{url}: larger than {max_bytes >> 20} MiB, which no pinned file is; refused")
                digest.update(chunk)
                fh.write(chunk)
    return digest.hexdigest()


def pinned_source(relative: str, url: str, sha256: str) -> str:
    """Declare the official download of a data file (a plugin's too): `url` is fetched once into the cache
    when no data directory is given, checked against `sha256` on download and on every load, and fetched
    from ``$MUE_DATA_MIRROR/<relative>`` when that is set. Returns `relative`, for `jsonl_loader`."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise DataError(f"pinned source {relative}: sha256 must be 64 lowercase hex digits, got {sha256!r}")
    if relative.startswith("/") or ".." in Path(relative).parts:
        raise DataError(f"pinned source {relative!r}: a relative path inside the data directory is required")
    known = OFFICIAL.get(relative)
    if known is not None and (known.url, known.sha256) != (url, sha256):
        raise DataError(f"pinned source {relative} is already declared with another URL or sha256")
    OFFICIAL[relative] = OfficialFile(relative, url, sha256)
    return relative


def pinned_sha256(relative: str) -> str | None:
    """The pin of a declared file (or of a file built from an official archive); None when it has none."""
    if relative in OFFICIAL:
        return OFFICIAL[relative].sha256
    return next((a.builds[relative] for a in ARCHIVES if relative in a.builds), None)


def fetch(relative: str, task: str) -> Path:
    """The verified cached copy of the official `relative` file, downloading it on first use."""
    import httpx

    archive = next((a for a in ARCHIVES if relative in a.builds), None)
    if archive is not None:
        return _fetch_built(archive, relative, task)
    official = OFFICIAL.get(relative)
    if official is None:
        raise DataError(
            f"task {task!r} needs {relative}, which has no pinned download: pass --data-dir DIR or set "
            f"${DATA_DIR_ENV} to a directory holding {relative} (with the upstream file names)"
        )
    path = cache_dir() / relative
    if _check_cached(path, official.sha256):
        return path
    import tempfile

    url = _url(official)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            digest = _download(url, tmp)
        except (httpx.HTTPError, OSError) as exc:
            raise DataError(
                f"task {task!r} needs {relative} and could not download it from {url} "
                f"({exc.__class__.__name__}: {exc}); pass --data-dir DIR or set ${DATA_DIR_ENV} to a directory "
                f"holding {relative}"
            ) from exc
        if digest != official.sha256:
            raise DataError(
                f"downloaded {url}: sha256 {digest} does not match the pinned {official.sha256}; refused and "
                "not cached (upstream changed the file, or something between altered it)"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _check_cached(path: Path, pin: str) -> bool:
    """True when `path` is cached with its pinned digest; a cached file with another digest is refused."""
    if not path.is_file():
        return False
    digest = sha256_file(path)
    if digest != pin:
        raise DataError(
            f"cached {path} has sha256 {digest}, not the pinned {pin}; it was not used. Delete it to download it again"
        )
    return True


def _fetch_built(archive: OfficialArchive, relative: str, task: str) -> Path:
    """A file built from an official archive: download the archive, build every file it yields, check each
    against its pin, and cache them all (the archive itself is not kept)."""
    import hashlib
    import tarfile
    import tempfile

    import httpx

    path = cache_dir() / relative
    if _check_cached(path, archive.builds[relative]):
        return path
    url = _url(archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
        download = Path(tmp) / "archive"
        try:
            _download(url, download, archive.max_bytes)
            built = archive.build(download)
        except (httpx.HTTPError, OSError, tarfile.TarError, ValueError) as exc:
            raise DataError(
                f"task {task!r} needs {relative}, built from {url}, and could not get it "
                f"({exc.__class__.__name__}: {exc}); pass --data-dir DIR or set ${DATA_DIR_ENV} to a directory "
                f"holding {relative}"
            ) from exc
        for name, pin in archive.builds.items():
            digest = hashlib.sha256(built.get(name, b"")).hexdigest()
            if digest != pin:
                raise DataError(
                    f"{name} built from {url}: sha256 {digest} does not match the pinned {pin}; refused and not "
                    "cached (the archive's problems differ from the original release)"
                )
        for name, data in built.items():
            staged = Path(tmp) / name.replace("/", "_")
            staged.write_bytes(data)
            (cache_dir() / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, cache_dir() / name)
    return path
