"""A project survives SIGKILL in the middle of a large import: every reported batch is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from test_store_fixtures import write_clip

from microau_gui.store.project import Project

BATCH = 250
N_CLIPS = 8
N_SAMPLES = 200_000  # far more than the child can import before it is killed
N_FRAMES = 20
# Each event has its own identity (video, frames, coder): the first 8 x 1540 samples are distinct.
TRIPLES = [(a, b, c) for a in range(N_FRAMES) for b in range(a, N_FRAMES) for c in range(b, N_FRAMES)]

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from microau_gui.core.aus import parse_au_string
    from microau_gui.core.types import Dataset, ImportReport, Sample
    from microau_gui.media import open_media
    from microau_gui.store.project import Project

    project_path, root, n_samples, batch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    clips = sorted(p for p in root.iterdir() if p.is_dir())
    n = 20
    triples = [(a, b, c) for a in range(n) for b in range(a, n) for c in range(b, n)]
    codes = [parse_au_string(t).codes for t in ("4+7", "12", "L10B", "1+2", "A12B+ref(43)")]
    samples = tuple(
        Sample(subject=f"{k % 4:02d}", clip=clips[k % len(clips)].name, media_path=clips[k % len(clips)],
               onset=triples[(k // len(clips)) % len(triples)][0],
               apex=triples[(k // len(clips)) % len(triples)][1],
               offset=triples[(k // len(clips)) % len(triples)][2], aus=codes[k % len(codes)],
               emotion=f"e{k}")
        for k in range(n_samples))
    sheet = root / "coding.xlsx"
    dataset = Dataset("casme2", sheet, root, samples, ImportReport("casme2", sheet, n_samples))
    with Project.open(project_path) as project:
        def report(n_done, n_total):
            print(n_done, flush=True)
        project.import_dataset(dataset, open_media, coder="bulk", batch_size=batch, progress=report)
    print("finished", flush=True)
""")


def test_sigkill_during_large_import_keeps_every_committed_batch(tmp_path, astronaut_path):
    root = tmp_path / "media"
    for k in range(N_CLIPS):
        write_clip(root / f"clip{k}", astronaut_path, N_FRAMES)
    project_path = tmp_path / "big.maus"
    Project.create(project_path).close()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project_path), str(root), str(N_SAMPLES), str(BATCH)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    reported = []
    try:
        for line in child.stdout:
            reported.append(line.strip())
            if len(reported) == 4:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(60)
    stderr = child.stderr.read()
    assert child.returncode == -signal.SIGKILL, stderr[-2000:]
    assert "finished" not in reported
    acknowledged = int(reported[-1])
    assert acknowledged == 4 * BATCH

    with Project.open(project_path) as project:  # opening runs quick_check
        assert project.integrity_check() == ["ok"]
        events = project.events()
        n_rows = len(events)
        assert n_rows >= acknowledged
        assert n_rows % BATCH == 0  # whole batches only: the one being written was rolled back
        (run,) = project.imports()  # the run says what it added, and that it never finished
        assert (run["n_added"], run["finished_at"]) == (n_rows, None)
        by_emotion = {e.emotion: e for e in events}
        for k in range(acknowledged):
            event = by_emotion[f"e{k}"]
            assert (event.onset, event.apex, event.offset) == TRIPLES[(k // N_CLIPS) % len(TRIPLES)]
            assert event.aus
        assert len(project.videos()) == N_CLIPS
        assert all(v.n_frames == N_FRAMES for v in project.videos())
