"""`analyze-corpus` on a local Ray cluster of 2 worker processes, against single-process `analyze`.

Real synthetic H.264 videos (synth --long, 1 s each), real MediaPipe, a real tiny checkpoint in
fp32, real Ray (one instance for the module: its start-up costs seconds on 2 busy cores), real
SQLite. The per-video CSVs must equal `analyze --speed fp32` byte for byte: chunk bounds are
multiples of the batch, so the model sees the same batches, and each worker runs one torch
thread, as `analyze` does by default.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_inference_fixtures import save_tiny_checkpoint

from microau_gui.cli import build_parser, main
from microau_gui.core.progress import Cancelled
from microau_gui.inference.corpus import (
    FAULT_ENV,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    CorpusOutput,
    CorpusSettings,
    VideoPlan,
    chunk_bounds,
)
from microau_gui.store.project import Project

N_VIDEOS = 4
# 1 s at 30 fps, --batch 4, --chunk-s 0.3: chunks 0-12, 12-24, 24-30, three per video
CORPUS_ARGS = ["--batch", "4", "--chunk-s", "0.3", "--workers", "2", "--no-progress"]
CHUNKS_PER_VIDEO = 3


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    from microau_gui.synth import generate_long_videos

    out = tmp_path_factory.mktemp("corpus") / "long_ds"
    return sorted(generate_long_videos(out, videos=N_VIDEOS, seconds=1.0, seed=11).videos)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("weights") / "flow-tiny", "flow", seed=3)


@pytest.fixture(scope="module")
def single(videos, checkpoint, tmp_path_factory) -> dict[str, bytes]:
    """Each video's CSV from single-process `analyze --speed fp32`, by CSV name."""
    folder = tmp_path_factory.mktemp("single")
    csvs = {}
    for video in videos:
        out = folder / f"{video.stem}.csv"
        assert main(["analyze", str(video), "--model", str(checkpoint), "--speed", "fp32", "--batch", "4",
                     "--threads", "1", "--out", str(out), "--no-progress"]) == 0
        csvs[out.name] = out.read_bytes()
    return csvs


def corpus(inputs, out: Path, checkpoint: Path, *extra: str) -> int:
    return main(["analyze-corpus", *map(str, inputs), "--out", str(out), "--model", str(checkpoint),
                 *CORPUS_ARGS, *extra])


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def chunks(out: Path) -> list[dict]:
    return [c for v in manifest(out)["videos"] for c in v["chunks"]]


def test_chunks_start_on_the_batch_grid_just_after_a_keyframe():
    # keyframes every 30 frames, sliding lag 6, batch grid 8, about 40 frames a chunk
    bounds = chunk_bounds(300, [0, 30, 60, 90, 120, 150, 180, 210, 240, 270], lag=6, grid=8, target=40)
    starts = [a for a, _ in bounds]
    assert bounds[0][0] == 0 and bounds[-1][1] == 300
    assert all(a == b for (_, a), (b, _) in zip(bounds, bounds[1:])), "chunks tile the video"
    for start in starts[1:]:
        assert start % 8 == 0
        assert (start - 6) % 30 < 8, f"chunk at {start}: its pre-roll must start just after a keyframe"
    # one keyframe for the whole video: fixed grid-aligned ranges, never one giant chunk
    bounds = chunk_bounds(1000, [0], lag=6, grid=8, target=100)
    assert max(b - a for a, b in bounds) <= 2 * 104 and all(a % 8 == 0 for a, _ in bounds)


@pytest.mark.parametrize("damage", ["chunk-without-start", "videos-not-a-list", "run-is-text", "not-json"])
def test_a_damaged_manifest_is_treated_as_absent_and_everything_is_redone(damage, tmp_path):
    """A rerun reads the previous manifest through its schema (#15 D16): a hand-edited or damaged
    one keeps nothing, so every chunk is redone, and never stops the run with a traceback."""
    settings = CorpusSettings(checkpoint="ckpt", model_version="m@1", batch_size=4)
    plan = VideoPlan(path=tmp_path / "a.mp4", csv_name="a.csv", content_hash="h", n_frames=24, fps=30.0,
                     chunks=((0, 12), (12, 24)))
    out = tmp_path / "run"
    out.mkdir()
    (out / "a.csv").write_text("done before\n")
    chunks = [{"index": i, "start": a, "stop": b, "frames": b - a, "status": "done", "run": 1}
              for i, (a, b) in enumerate(plan.chunks)]
    good = {"format": MANIFEST_FORMAT, "created": "then", "run": 1, "model": {"version": "m@1"},
            "settings": settings.outputs_key(),
            "videos": [{"path": str(plan.path), "csv": "a.csv", "content_hash": "h", "status": "done",
                        "chunks": chunks}]}
    (out / MANIFEST_NAME).write_text(json.dumps(good))
    kept = CorpusOutput.open(out, settings, [plan], inputs=[str(plan.path)], model={"version": "m@1"})
    assert kept.pending() == [] and kept.run == 2, "the undamaged manifest keeps the finished video"

    if damage == "chunk-without-start":
        del chunks[1]["start"]
    elif damage == "videos-not-a-list":
        good["videos"] = {"a": 1}
    elif damage == "run-is-text":
        good["run"] = "two"
    text = "{not json" if damage == "not-json" else json.dumps(good)
    (out / MANIFEST_NAME).write_text(text)
    redone = CorpusOutput.open(out, settings, [plan], inputs=[str(plan.path)], model={"version": "m@1"})
    assert [(t.start, t.stop) for t in redone.pending()] == list(plan.chunks)
    assert redone.run == 1 and not (out / "a.csv").exists(), "the old CSV would disagree with the redo"


def test_two_workers_write_exactly_the_csvs_of_single_process_analyze(ray_cluster, videos, checkpoint, single,
                                                                      tmp_path, capsys):
    out = tmp_path / "run"
    assert corpus([videos[0].parents[1]], out, checkpoint) == 0  # the folder holding them all
    for name, expected in single.items():
        assert (out / name).read_bytes() == expected, f"{name} differs from analyze's"
    run = manifest(out)
    assert run["model"]["version"].startswith(json.loads((checkpoint / "card.json").read_text())["name"])
    assert run["settings"]["speed"] == "fp32"
    assert all(v["content_hash"].startswith("sha1:") and v["status"] == "done" for v in run["videos"])
    done = chunks(out)
    assert len(done) == N_VIDEOS * CHUNKS_PER_VIDEO and all(c["status"] == "done" for c in done)
    assert run["summary"]["frames_undecodable"] == 0 and run["summary"]["frames"] == 30 * N_VIDEOS
    # 12 chunks on 2 worker processes: each loaded the model once and analysed several chunks
    assert len({c["worker"] for c in done}) == 2
    assert not (out / ".parts").exists(), "parts are removed once every CSV is assembled"

    # Nothing changed: the rerun analyses nothing and leaves the CSVs as they were.
    assert corpus([videos[0].parents[1]], out, checkpoint) == 0
    assert "0 chunks run, 12 kept from before" in capsys.readouterr().out
    assert all(c["run"] == 1 for c in chunks(out))
    assert (out / f"{videos[0].stem}.csv").read_bytes() == single[f"{videos[0].stem}.csv"]


def test_a_chunk_failing_once_is_retried_and_one_always_failing_or_unreadable_is_reported(ray_cluster, videos, checkpoint,
                                                                            single, tmp_path, monkeypatch,
                                                                            capsys):
    listed = tmp_path / "videos.txt"
    listed.write_text(f"# two of the corpus\n{videos[0]}\n\n{videos[1]}\n")
    flaky, broken = videos[0].stem, videos[1].stem
    monkeypatch.setenv(FAULT_ENV, f"{flaky}:1:1,{broken}:0:always")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    out = tmp_path / "run"
    assert corpus([listed, garbage], out, checkpoint, "--retries", "1") == 1
    err = capsys.readouterr().err
    failed_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(failed_lines) == 2 and "garbage.mp4" in failed_lines[0]
    assert f"{broken}.mp4 chunk 0" in failed_lines[1] and "injected fault" in failed_lines[1]
    assert [Path(u["path"]).name for u in manifest(out)["unreadable"]] == ["garbage.mp4"]
    assert (out / f"{flaky}.csv").read_bytes() == single[f"{flaky}.csv"], "retried to completion"
    assert not (out / f"{broken}.csv").exists(), "an incomplete video gets no CSV"
    by_video = {Path(v["path"]).stem: v for v in manifest(out)["videos"]}
    assert by_video[flaky]["status"] == "done" and by_video[broken]["status"] == "failed"
    states = [(c["index"], c["status"]) for c in by_video[broken]["chunks"]]
    assert states == [(0, "failed"), (1, "done"), (2, "done")], "the other chunks still finish"
    assert "attempt 2" in by_video[broken]["chunks"][0]["error"], "retried once before reported"

    # The fault cleared: the rerun does the failed chunk only.
    monkeypatch.delenv(FAULT_ENV)
    assert corpus([listed], out, checkpoint) == 0
    rerun = [(Path(v["path"]).stem, c["index"]) for v in manifest(out)["videos"] for c in v["chunks"] if c["run"] == 2]
    assert rerun == [(broken, 0)]
    assert (out / f"{broken}.csv").read_bytes() == single[f"{broken}.csv"]


def test_an_interrupted_run_resumes_with_only_the_missing_chunks_and_one_writer_fills_the_project(
        ray_cluster, videos, checkpoint, single, tmp_path):
    from microau_gui.cli import cmd_analyze_corpus

    two, out, project = videos[2:], tmp_path / "run", tmp_path / "p.maus"
    args = build_parser("analyze-corpus").parse_args(
        ["analyze-corpus", *map(str, two), "--out", str(out), "--model", str(checkpoint), "--project",
         str(project), *CORPUS_ARGS])

    def stop_after_three_chunks() -> bool:  # finished chunks: kept parts, and assembled videos
        return len(list(out.glob(".parts/*/*.csv"))) + CHUNKS_PER_VIDEO * len(list(out.glob("*.csv"))) >= 3

    with pytest.raises(Cancelled):
        cmd_analyze_corpus.run(args, should_cancel=stop_after_three_chunks)
    first = chunks(out)
    n_done = sum(c["status"] == "done" for c in first)
    assert 3 <= n_done < len(first), "interrupted with work left"

    assert corpus(two, out, checkpoint, "--project", str(project)) == 0
    second = chunks(out)
    assert sum(c["run"] == 2 for c in second) == len(first) - n_done, "only the missing chunks ran"
    assert all(c["status"] == "done" for c in second)
    for video in two:
        assert (out / f"{video.stem}.csv").read_bytes() == single[f"{video.stem}.csv"]

    # Every row went into the project through the driver, the one writer: once, under one version.
    with Project.open(project) as opened:
        assert len(opened.videos()) == len(two)
        [version] = opened.models.list()
        for video in two:
            row = opened.video_by_path(video)
            assert opened.predictions.frames(row.id, version.id, "fp32").tolist() == list(range(30))
            lines = single[f"{video.stem}.csv"].decode().splitlines()[1:]
            for line in (lines[0], lines[17], lines[29]):
                cached = opened.predictions.get(row.id, version.id, int(line.split(",")[0]))
                expected = np.array([float(x) for x in line.split(",")[3:]])
                assert np.abs(cached.probs - expected).max() <= 5e-4  # float16 in the cache


@pytest.mark.parametrize("case", ["missing", "empty-list", "out-is-project", "listed-missing", "address-local",
                                  "no-head"])
def test_hostile_inputs_get_one_line_and_leave_nothing(case, videos, checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    project = tmp_path / "p.maus"
    Project.open_or_create(project).close()
    listed = tmp_path / "list.txt"
    inputs, extra = [videos[0]], []
    if case == "missing":
        inputs = [tmp_path / "nope.mp4"]
    elif case == "empty-list":
        listed.write_text("# nothing yet\n\n")
        inputs = [listed]
    elif case == "out-is-project":
        out, extra = project, ["--project", str(project)]
    elif case == "listed-missing":
        listed.write_text(f"{videos[0]}\ngone/clip.mp4\n")
        inputs = [listed]
    elif case == "address-local":
        extra = ["--address", "127.0.0.1:6379"]
    else:
        extra = ["--engine", "ray", "--address", "127.0.0.1:1"]  # nothing listens on port 1
    before = sorted(p.name for p in tmp_path.iterdir())
    project_bytes = project.read_bytes()
    assert corpus(inputs, out, checkpoint, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    expected = {"missing": "nope.mp4: no such file", "empty-list": "list of videos is empty",
                "out-is-project": "is the project", "listed-missing": "clip.mp4: no such file",
                "address-local": "--engine ray", "no-head": "no Ray head answers"}[case]
    assert expected in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing left behind"
    assert project.read_bytes() == project_bytes
