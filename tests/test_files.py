"""Every file the program writes goes through one atomic-write helper (core.files): two writers of
one output never mix, a killed writer's leftovers are removed by the next write of that output,
and files are as readable as the umask says (a lab group shares checkpoints and reports)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from microau_gui.core.files import atomic_dir, partials_of, write_atomically
from microau_gui.core.types import FramePrediction
from microau_gui.inference.analysis import CsvSink
from microau_gui.store.export import export_json
from microau_gui.store.project import Project

VOCAB = ("AU4", "AU12")
REPO = Path(__file__).resolve().parents[1]


def _row(frame_idx: int, p: float) -> FramePrediction:
    return FramePrediction(frame_idx=frame_idx, reference_idx=0, model_version="m", vocab=VOCAB,
                           face_found=True, probs=np.array([p, p], np.float32))


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_two_analyses_writing_one_csv_never_mix_rows(tmp_path):
    """#15 D4: two `analyze` runs with the same --out shared the temporary `.out.partial`; the
    second truncated the first's rows and one commit found no file. Now each has its own, and
    the file in place is one whole run."""
    out = tmp_path / "probs.csv"
    first, second = CsvSink(out, VOCAB), CsvSink(out, VOCAB)
    for k in range(50):  # interleaved, as two processes batch by batch
        first.write([_row(k, 0.25)], [k / 30])
        second.write([_row(k, 0.75)], [k / 30])
    first.commit()
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["AU4"] for r in rows] == ["0.250000"] * 50
    second.commit()
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame_idx"]) for r in rows] == list(range(50))
    assert {r["AU12"] for r in rows} == {"0.750000"}
    assert _hidden(tmp_path) == []


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "report.json"
    out.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomically(out, fail)
    assert out.read_text() == "old" and _hidden(tmp_path) == []


def test_a_killed_writers_partial_is_removed_by_the_next_write(tmp_path):
    """D10/D4: a SIGKILLed export left its hidden partial for good (four of them held 249 MB).
    The next export of the same file removes it; another output's partial is left alone."""
    project_path = tmp_path / "p.maus"
    Project.create(project_path).close()
    out = tmp_path / "export.json"
    script = textwrap.dedent(f"""
        import json, os, signal
        from microau_gui.core.files import partials_of
        from microau_gui.store import export
        from microau_gui.store.project import Project

        real_dumps = json.dumps

        def dumps(document, **options):
            # killed once the export's partial exists, before the document is in it
            if partials_of({str(out)!r}):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_dumps(document, **options)

        export.json.dumps = dumps
        with Project.open({str(project_path)!r}) as project:
            export.export_json(project, {str(out)!r})
    """)
    for _ in range(2):
        killed = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-500:]
    assert len(partials_of(out)) == 2 and not out.exists()
    other = tmp_path / ".other.deadbeef-1-0123abcd.partial.json"
    other.write_text("not ours")

    with Project.open(project_path) as project:
        export_json(project, out)
    assert out.is_file() and partials_of(out) == []
    assert _hidden(tmp_path) == [other.name]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    """#15 D12: checkpoints, sidecars and reports were written 0600 (mkstemp), so nobody else in
    a lab could read a shared checkpoint. They now get 0666 (folders 0777) less the umask."""
    previous = os.umask(umask)
    try:
        sidecar = tmp_path / "card.json"
        write_atomically(sidecar, lambda tmp: tmp.write_text("{}"), durable=True)
        csv_out = tmp_path / "probs.csv"
        sink = CsvSink(csv_out, VOCAB)
        sink.write([_row(0, 0.5)], [0.0])
        sink.commit()
        with atomic_dir(tmp_path / "checkpoint", named=True) as folder:
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"x")
    finally:
        os.umask(previous)
    for path in (sidecar, csv_out):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    assert (tmp_path / "checkpoint").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    final = tmp_path / "demo"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(FileExistsError):
        with atomic_dir(final) as staging:
            (staging / "new.txt").write_text("new")
    with pytest.raises(RuntimeError):
        with atomic_dir(final, replace=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("build failed")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    with atomic_dir(final, replace=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert _hidden(tmp_path) == []
