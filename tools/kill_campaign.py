"""The crash-safety campaign of issue #15: SIGKILL the CLI mid-write, then check the project.

    python tools/kill_campaign.py [--kills 5] [--work DIR] [--json OUT]

For each of import, analyze --project, export and finetune, on the bundled demo (assets/demo,
weights/demo-tiny), the command is started until it was killed `--kills` times with SIGKILL after
a random delay inside its measured run time (a run that ends first counts as a run, not a kill;
import creates its project each time, analyze and finetune restart from the imported project). After every kill: `PRAGMA integrity_check` is "ok", every
row committed before the command started is still there (events, model versions, cached
predictions only grow or stay), and no output file that existed whole was replaced by a partial
one. Then the two-writer cases: two imports of the same sheet into one project at once (the
events equal one import's), and two processes creating the same project at once (both exit 0).

Prints one line per case and a summary; `--json` writes the figures. Not part of the test suite
(minutes of CPU); run it after changes to the store, the importers or the writers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo"
WEIGHTS = ROOT / "weights" / "demo-tiny"
TABLES = ("events", "model_versions", "predictions", "videos")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1",
            "MICROAU_PROXY_DIR": tempfile.mkdtemp(prefix="kill-proxies-")}


def _cli(*args) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), *map(str, args)]


def _counts(project: Path) -> dict[str, int]:
    if not project.exists():
        return {}
    conn = sqlite3.connect(f"file:{project}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def _integrity(project: Path) -> str:
    conn = sqlite3.connect(project)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def _timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"baseline run failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def _kill_after(command: list[str], cwd: Path, delay_s: float) -> bool:
    """Start, SIGKILL after `delay_s`; True when it was still running (really killed)."""
    process = subprocess.Popen(command, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def campaign(work: Path, kills: int, rng: random.Random) -> dict:
    base = work / "base.maus"
    media = work / "demo"
    shutil.copytree(DEMO, media, ignore=shutil.ignore_patterns("*.maus"))
    sheet = media / "coding.xlsx"
    import_cmd = lambda project: _cli("import", "casme2", sheet, media, "--project", project)  # noqa: E731
    _timed(import_cmd(base), work)
    clip = sorted(p for p in media.glob("sub01/*") if p.is_dir())[0]
    # (command, output it writes, whether each run starts from the base project: analyze caches
    # its predictions, so a second run on the same project would finish before any kill)
    cases = {
        "import": (lambda p: import_cmd(p), None),
        "analyze": (lambda p: _cli("analyze", clip, "--project", p, "--model", WEIGHTS,
                                   "--out", work / "analyze.csv"), work / "analyze.csv"),
        "export": (lambda p: _cli("export", "--project", p, "--format", "json",
                                  "--out", work / "export.json"), work / "export.json"),
        "finetune": (lambda p: _cli("finetune", "--project", p, "--model", WEIGHTS, "--out",
                                    work / "weights" / "tuned", "--epochs", "2"), work / "weights" / "tuned"),
    }
    fresh = {"analyze", "finetune"}  # analyze caches, finetune reuses its token cache: reruns end sooner
    figures = {}
    for name, (command_of, output) in cases.items():
        project = work / f"{name}.maus"
        shutil.copy2(base, project)
        if name == "import":  # an import into the base adds nothing: kill it creating a project
            project.unlink()
        duration = _timed(command_of(project), work)  # also leaves a whole output to protect
        whole = _snapshot(output)
        runs = killed = ok = lost = partial = 0
        while killed < kills and runs < 4 * kills:  # a run can end before its kill: try again
            runs += 1
            if name in fresh:
                shutil.copy2(base, project)
            elif name == "import":
                for leftover in (project, Path(f"{project}-wal"), Path(f"{project}-shm")):
                    leftover.unlink(missing_ok=True)
            before = _counts(project)
            killed += _kill_after(command_of(project), work, rng.uniform(0.05, 0.7) * duration)
            after = _counts(project)
            ok += not project.exists() or _integrity(project) == "ok"  # a killed create may leave none
            lost += any(after.get(t, 0) < n for t, n in before.items())
            partial += whole is not None and not _whole(output, whole)
        figures[name] = {"runs": runs, "killed": killed, "integrity_ok": ok, "rows_lost": lost,
                         "outputs_replaced_by_partial": partial, "run_s": round(duration, 1)}
        print(f"{name}: {figures[name]}", flush=True)
    figures["two_imports"] = _two_imports(work, import_cmd)
    figures["two_creates"] = _two_creates(work, import_cmd)
    return figures


def _snapshot(output: Path | None):
    if output is None or not output.exists():
        return None
    if output.is_dir():
        return {p.name: p.stat().st_size for p in output.iterdir()}
    return output.stat().st_size


def _whole(output: Path, snapshot) -> bool:
    """The output is a complete file again: the old one, or a new complete one (same layout)."""
    if output.is_dir():
        names = {p.name for p in output.iterdir() if not p.name.startswith(".")}
        return names == set(snapshot) and all((output / n).stat().st_size > 0 for n in names)
    if not output.exists():
        return False
    text = output.read_bytes()
    if output.suffix == ".json":
        try:
            json.loads(text)
        except ValueError:
            return False
    return len(text) > 0


def _two_imports(work: Path, import_cmd) -> dict:
    single = work / "single.maus"
    _timed(import_cmd(single), work)
    double = work / "double.maus"
    processes = [subprocess.Popen(import_cmd(double), cwd=work, env=_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [p.wait(timeout=1800) for p in processes]
    result = {"exit_codes": codes, "events_single": _counts(single).get("events"),
              "events_two_writers": _counts(double).get("events"),  # None: the project vanished
              "integrity": _integrity(double) if double.exists() else "missing"}
    print(f"two imports into one project: {result}", flush=True)
    return result


def _two_creates(work: Path, import_cmd) -> dict:
    project = work / "created-twice.maus"
    processes = [subprocess.Popen(import_cmd(project), cwd=work, env=_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [p.wait(timeout=1800) for p in processes]
    result = {"exit_codes": codes, "events": _counts(project).get("events"),
              "integrity": _integrity(project) if project.exists() else "missing"}
    print(f"two processes creating one project: {result}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kill-campaign-"))
    work.mkdir(parents=True, exist_ok=True)
    figures = campaign(work, args.kills, random.Random(args.seed))
    bad = [name for name, f in figures.items() if "runs" in f
           and (f["integrity_ok"] != f["runs"] or f["rows_lost"] or f["outputs_replaced_by_partial"]
                or f["killed"] < args.kills)]
    two = figures["two_imports"]
    bad += [] if two["events_two_writers"] == two["events_single"] and two["exit_codes"] == [0, 0] else ["two_imports"]
    creates = figures["two_creates"]
    bad += [] if creates["exit_codes"] == [0, 0] and creates["integrity"] == "ok" else ["two_creates"]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print("campaign " + ("passed" if not bad else f"FAILED: {', '.join(bad)}") + f" (work folder {work})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
