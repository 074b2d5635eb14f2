"""Official-source downloads over loopback: a mirror serving the upstream file names, pinned sha256, cache."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from mathusereval.data.files import sha256_file
from mathusereval.data.sources import ARCHIVES, OFFICIAL
from mathusereval.plugins import registry

from .conftest import run_cli
from .loopback import LoopbackServer

registry.names("tasks")  # the task modules declare their pins in OFFICIAL


@contextmanager
def serving(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """A static file server on 127.0.0.1 for `directory`; yields its URL and the paths requested."""
    requested: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

    with LoopbackServer(functools.partial(Handler, directory=str(directory)), path="") as server:
        yield server.url, requested


def test_pins_match_the_shared_copies(shared_data: Path) -> None:
    """Every pin equals the digest of the copy whose provenance was checked against upstream."""
    pins = {relative: official.sha256 for relative, official in OFFICIAL.items()}
    pins.update((relative, pin) for archive in ARCHIVES for relative, pin in archive.builds.items())
    for relative, pin in pins.items():
        assert sha256_file(shared_data / relative) == pin, relative
        assert pin in (shared_data / relative.split("/")[0] / "PROVENANCE.md").read_text()


def test_download_once_then_load_from_the_verified_cache(tmp_path: Path, shared_data: Path) -> None:
    with serving(shared_data) as (url, requested):
        first = run_cli("tasks", cwd=tmp_path, env={"MUE_DATA_MIRROR": url})
        assert first.returncode == 0, first.stderr
        assert set(requested) == {*(f"/{r}" for r in OFFICIAL), "/math/MATH.tar"}  # the tarball is a 404 here
    for name, count in (("gsm8k", "1319"), ("math500", "500"), ("mathusereval", "567"), ("alignbench", "683")):
        rows = [[cell.strip() for cell in line.split("│")[1:3]] for line in first.stdout.splitlines()]
        assert [name, count] in rows, name
    assert "needs math/test.jsonl, built from" in first.stdout  # the mirror has no MATH.tar
    cached = tmp_path / ".mue-cache" / "data" / "gsm8k" / "test.jsonl"
    assert cached.read_bytes() == (shared_data / "gsm8k/test.jsonl").read_bytes()
    again = run_cli("tasks", cwd=tmp_path)  # the mirror is gone: served from the cache
    assert again.returncode == 0 and "1319" in again.stdout


def test_a_checksum_mismatch_is_refused_and_nothing_is_cached(tmp_path: Path, shared_data: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "gsm8k").mkdir(parents=True)
    original = (shared_data / "gsm8k/test.jsonl").read_text(encoding="utf-8")
    (mirror / "gsm8k/test.jsonl").write_text(original.replace("Janet", "Janey", 1), encoding="utf-8")
    with serving(mirror) as (url, _):
        result = run_cli("--tasks", "gsm8k", cwd=tmp_path, env={"MUE_DATA_MIRROR": url})
    assert result.returncode == 2
    pinned = OFFICIAL["gsm8k/test.jsonl"].sha256
    assert (
        f"{url}/gsm8k/test.jsonl: sha256 " in result.stderr and f"does not match the pinned {pinned}" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert list((tmp_path / ".mue-cache" / "data" / "gsm8k").iterdir()) == []  # no partial or bad file kept
    assert not (tmp_path / "results").exists()


def test_a_corrupted_cache_is_not_used(tmp_path: Path, shared_data: Path) -> None:
    cached = tmp_path / ".mue-cache" / "data" / "gsm8k" / "test.jsonl"
    cached.parent.mkdir(parents=True)
    shutil.copy(shared_data / "gsm8k/test.jsonl", cached)
    with cached.open("a") as fh:
        fh.write("\n")
    result = run_cli("--tasks", "gsm8k", cwd=tmp_path)
    assert result.returncode == 2 and f"cached {cached} has sha256" in result.stderr
    assert "Delete it to download it again" in result.stderr


def test_offline_without_a_data_dir_names_the_file_and_the_variable(tmp_path: Path) -> None:
    (tmp_path / "answers.jsonl").write_text('{"source": "matheval", "question_id": 1, "answer": "2"}\n')
    result = run_cli("import", "answers.jsonl", "--task", "mathusereval", cwd=tmp_path)
    assert result.returncode == 2
    assert "needs mathusereval/math-user-eval.jsonl and could not download it from http://127.0.0.1:9/" in result.stderr
    assert "--data-dir DIR or set $MUE_DATA_DIR" in result.stderr


def _math_tarball(shared_data: Path, target: Path, edit: bool = False) -> None:
    """hendrycks' MATH.tar layout (MATH/<split>/<subject>/<n>.json) rebuilt from the shared copies."""
    import io
    import json
    import tarfile

    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w") as tar:
        for split in ("test", "train"):
            for line in (shared_data / f"math/{split}.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                path = row.pop("unique_id")
                if edit and path == "test/algebra/1.json":
                    row["problem"] = row["problem"].replace("vertical", "horizontal")
                data = json.dumps(row, indent=4).encode()  # the originals' formatting does not matter
                info = tarfile.TarInfo(f"MATH/{path}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_full_math_is_built_from_the_original_tarball_and_pinned(tmp_path: Path, shared_data: Path) -> None:
    _math_tarball(shared_data, tmp_path / "mirror" / "math" / "MATH.tar")
    with serving(tmp_path / "mirror") as (url, requested):
        result = run_cli("tasks", cwd=tmp_path, env={"MUE_DATA_MIRROR": url})
    assert result.returncode == 0, result.stderr
    rows = [[cell.strip() for cell in line.split("│")[1:3]] for line in result.stdout.splitlines()]
    assert ["math", "5000"] in rows and ["math-minerva-4shot", "5000"] in rows
    assert requested.count("/math/MATH.tar") == 1  # test and train built from one download
    for split in ("test", "train"):
        cached = tmp_path / ".mue-cache" / "data" / "math" / f"{split}.jsonl"
        assert cached.read_bytes() == (shared_data / f"math/{split}.jsonl").read_bytes()


def test_an_edited_math_tarball_is_refused_and_nothing_is_cached(tmp_path: Path, shared_data: Path) -> None:
    _math_tarball(shared_data, tmp_path / "mirror" / "math" / "MATH.tar", edit=True)
    with serving(tmp_path / "mirror") as (url, _):
        result = run_cli("--tasks", "math", cwd=tmp_path, env={"MUE_DATA_MIRROR": url})
    assert result.returncode == 2
    assert "math/test.jsonl built from" in result.stderr and "does not match the pinned 1b833f0f" in result.stderr
    assert not list((tmp_path / ".mue-cache" / "data" / "math").glob("*.jsonl"))
