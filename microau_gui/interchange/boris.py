"""BORIS export: a project's events as a BORIS "tabular events" table (.csv or .tsv).

Owns: `export_boris`, `BORIS_COLUMNS`. May import `core`, `store` and the standard library.

Written by hand with the `csv` module: BORIS has no library for its files (its own exporter
builds the table with tablib inside the application). The columns are those of BORIS's own
"Tabular events" export (BORIS 8/9, `export_observation.export_tabular_events`), so scripts and
R/pandas code written for BORIS exports read ours unchanged:

- one observation per (video, coder): `Observation id` = `VIDEO [CODER]`, `Source` the video's
  path, `Media duration (s)` and `FPS` the video's;
- `Subject` = the video's subject; `Behavior` = an AU (`AU12`, category `AU`) or the expression
  as a whole (`micro-expression` / `macro-expression`, category `expression`);
- state events as BORIS writes them: a `START` row at the onset and a `STOP` row at the end of
  the offset frame, `Time` in seconds (3 decimals, as BORIS), `Image index` the frame index;
- `Modifier #1` = side (`left`, `right`, `both`, `asymmetric`; `top lip` / `bottom lip` for
  FACS `T28` / `B24`), `Modifier #2` = FACS intensity
  (`A`-`E`, empty when not coded), `Modifier #3` = `uncertain` for `ref(..)` codes; on the
  expression rows `Modifier #1` is the emotion;
- `Comment` on the START row: the event's full FACS string.

Kept: every event, AU, side, intensity, emotion, type, coder and frame. Lost: apex (BORIS state
events have no apex; it is in `Comment` as `apex=FRAME`), notes, objective class.

Reading BORIS `.boris` projects is not offered: a `.boris` file holds behaviours of the user's
own ethogram with no fixed meaning, so importing one needs an ethogram-to-FACS mapping per
project, which no coder asked for yet; the tabular export above is what BORIS users load.
"""

from __future__ import annotations

import csv
from pathlib import Path

from microau_gui.core.aus import Side
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.core.outputs import check_output, project_guard
from microau_gui.interchange.clock import FrameClock
from microau_gui.store.project import Project

BORIS_COLUMNS = (
    "Observation id", "Observation date", "Description", "Observation duration",
    "Observation type", "Source", "Time offset (s)", "Media duration (s)", "FPS", "Subject",
    "Behavior", "Behavioral category", "Modifier #1", "Modifier #2", "Modifier #3",
    "Behavior type", "Time", "Media file name", "Image index", "Image file path", "Comment",
)
_SIDES = {Side.LEFT: "left", Side.RIGHT: "right", Side.BOTH: "both"}


def export_boris(project: Project, out: Path | str, *, coder: str | None = None,
                 source: str | None = None) -> tuple[Path, int]:
    """Write the tabular events; returns (path, number of events). `.tsv` gives tabs."""
    out = Path(out).absolute()
    if out.suffix.lower() not in (".csv", ".tsv"):
        raise UserError(f"a BORIS table is written as .csv or .tsv, not {out.name}")
    out = check_output(out, project_guard(project.path))
    videos = {v.id: v for v in project.videos()}
    events = sorted(project.events(coder=coder, source=source),
                    key=lambda e: (videos[e.video_id].name, e.coder, e.onset, e.id))
    rows = []
    clocks: dict[int, FrameClock] = {}
    for event in events:
        video = videos[event.video_id]
        clock = clocks.setdefault(video.id, FrameClock.of(project, video))
        start_s, stop_s = clock.start_s(event.onset), clock.end_s(event.offset)
        duration_s = video.n_frames / video.fps
        base = {
            "Observation id": f"{video.name} [{event.coder}]" if event.coder else video.name,
            "Observation date": event.created_at[:19].replace("T", " "),
            "Description": "", "Observation duration": f"{duration_s:.3f}",
            "Observation type": "Media file(s)", "Source": f"player #1:{video.rel_path}",
            "Time offset (s)": "0.0", "Media duration (s)": f"{duration_s:.3f}",
            "FPS": f"{video.fps:.3f}", "Subject": video.subject or "",
            "Media file name": video.rel_path, "Image file path": "NA",
        }
        behaviours = [(f"{event.expression_type}-expression", "expression",
                       (event.emotion or "", "", ""))]
        for code in event.aus:
            side = "asymmetric" if code.asymmetric else _SIDES[code.side]
            if code.lip is not None:  # FACS T28 / B24: one lip, on the side modifier
                side = "top lip" if code.lip == "T" else "bottom lip"
            behaviours.append((code.code, "AU", (side, code.intensity or "",
                                                 "uncertain" if code.uncertain else "")))
        for behaviour, category, modifiers in behaviours:
            for status, t_s, frame in (("START", start_s, clock.number(event.onset)),
                                       ("STOP", stop_s, clock.number(event.offset) + 1)):
                rows.append({**base, "Behavior": behaviour, "Behavioral category": category,
                             "Modifier #1": modifiers[0], "Modifier #2": modifiers[1],
                             "Modifier #3": modifiers[2], "Behavior type": status,
                             "Time": f"{t_s:.3f}", "Image index": str(frame),
                             "Comment": (f"{event.aus_text} apex={event.apex}"
                                         if status == "START" else "")})
    # BORIS lists an observation's events in time order, START before STOP at equal times.
    rows.sort(key=lambda r: (r["Observation id"], float(r["Time"]), r["Behavior type"] == "STOP"))
    try:
        with atomic_path(out) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=BORIS_COLUMNS,
                                    delimiter="\t" if out.suffix.lower() == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from None
    return out, len(events)
