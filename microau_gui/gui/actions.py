"""Every command of the window as a QAction with its keys: the one table menus, buttons and the
Help > Shortcuts dialog are built from (so the dialog cannot drift from the real bindings).

Owns: `ActionSpec`, `ACTION_SPECS`, `MENUS`, `build_actions`, `shortcut_rows`. May import
PySide6 and session.

Marking keys (see ProjectSession.mark): I starts a new event at the playhead, A marks its apex,
O its offset and adds it (one undo step); Shift+I/A/O move the selected event's boundary to the
playhead. Esc in a text field (go-to frame, quick entry) leaves it and gives the keys back to the
window instead of deselecting. Digit keys 1..9, 0 toggle the first ten AUs of the model vocabulary on the selected
event (session.annotation.digit_aus); with the default vocabulary 1=AU1 2=AU2 3=AU4 4=AU5 5=AU6
6=AU7 7=AU9 8=AU10 9=AU12 0=AU14. The toggled AU becomes the *focused AU*: Alt+A..E set its
intensity, Alt+L / Alt+R / Alt+S (both) its side, Alt+Up / Alt+Down move the focus; C opens the
quick-entry field for any AU of the catalogue (gui.au_panel). Every key can be rebound per user
(gui.keymap, Help > Shortcuts).

Playback keys beyond play/step: Ctrl+[ and Ctrl+] mark the A and B of any range to loop over
(L then loops over it instead of the selected event; Ctrl+Shift+L clears it). Jog/shuttle: J, K
and L already mean review next/previous and loop, so the shuttle is Shift+J (play backwards;
again: faster), Shift+K (stop), Shift+L (play forwards; again: faster).

Per-AU timing: Alt+Shift+I / A / O put the focused AU's own onset / apex / offset at the playhead;
Alt+Shift+Backspace makes it span its event again. View > Blind coding mode (Ctrl+Shift+B) hides
the model and the other coders; Ctrl+T opens the event table.

Review keys (session.review): J next and K previous item of the active review queue (spotted
candidates or suggestions), Y accepts the item, X rejects it and goes to the next undecided one.
Ctrl+Shift+R (Review > Suggest what to review) fills the suggestions queue from the active model
version's cached predictions; Y on a suggestion marks its event reviewed, or adds the uncoded
expression it points at as an event (session.review explains why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from microau_gui.core.aus import INTENSITIES, Side
from microau_gui.session.annotation import DIGIT_KEYS
from microau_gui.session.records import Boundary

MENUS = ("File", "Edit", "Playback", "Annotate", "Review", "View", "Model", "Help")


@dataclass(frozen=True)
class ActionSpec:
    name: str  # key into the window's `actions` dict
    menu: str  # one of MENUS
    text: str  # menu text
    keys: tuple[str, ...] = ()  # QKeySequence strings, first one shown in menus
    run: Callable[[QMainWindow], None] | None = None  # what triggering does
    checkable: bool = False
    button: str = ""  # short text on a tool button (QAction.iconText); default: `text`


def _digit_spec(digit: str) -> ActionSpec:
    return ActionSpec(f"toggle_au_{digit}", "Annotate", f"Toggle AU key {digit}", (digit,),
                      lambda w: w.toggle_digit(digit))


def _intensity_spec(letter: str) -> ActionSpec:
    return ActionSpec(f"intensity_{letter}", "Annotate", f"Focused AU: intensity {letter}",
                      (f"Alt+{letter}",), lambda w: w.au_panel.set_intensity(letter))


ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "File", "&Open video, image folder or project…", ("Ctrl+O",),
               lambda w: w.open_dialog()),
    ActionSpec("open_folder", "File", "Open image &folder…", ("Ctrl+Shift+O",),
               lambda w: w.open_folder_dialog()),
    ActionSpec("import", "File", "Import &dataset (coding sheet + media)…", ("Ctrl+Shift+I",),
               lambda w: w.import_dialog()),
    ActionSpec("analyze", "File", "&Analyse video (fill the timeline traces)", ("Ctrl+R",),
               lambda w: w.analyze_video()),
    ActionSpec("add_video", "File", "Add &video to this project…", ("Ctrl+Shift+A",),
               lambda w: w.add_video_dialog()),
    ActionSpec("switch_coder", "File", "Switch &coder…", ("Ctrl+Shift+U",),
               lambda w: w.ask_coder()),
    ActionSpec("relink", "File", "&Relink video… (its media file or folder moved)", (),
               lambda w: w.relink_dialog()),
    ActionSpec("quit", "File", "&Quit", ("Ctrl+Q",), lambda w: w.close()),
    ActionSpec("delete_event", "Edit", "&Delete selected event (rows of the event table)",
               ("Delete",), lambda w: w.delete_events()),
    ActionSpec("cancel", "Edit", "Cancel marking / deselect / leave a text field", ("Esc",),
               lambda w: w.cancel()),
    ActionSpec("play", "Playback", "Play / pause", ("Space",), lambda w: w.session.toggle_play()),
    ActionSpec("back1", "Playback", "Step back 1 frame", ("Left",), lambda w: w.session.step(-1),
               button="◀ 1"),
    ActionSpec("forward1", "Playback", "Step forward 1 frame", ("Right",),
               lambda w: w.session.step(1), button="1 ▶"),
    ActionSpec("back10", "Playback", "Step back 10 frames", ("Shift+Left",),
               lambda w: w.session.step(-10), button="◀◀ 10"),
    ActionSpec("forward10", "Playback", "Step forward 10 frames", ("Shift+Right",),
               lambda w: w.session.step(10), button="10 ▶▶"),
    ActionSpec("first", "Playback", "First frame", ("Home",), lambda w: w.session.seek(0)),
    ActionSpec("last", "Playback", "Last frame", ("End",),
               lambda w: w.session.seek(w.session.n_frames - 1)),
    ActionSpec("slower", "Playback", "Slower", ("[",), lambda w: w.session.change_speed(-1)),
    ActionSpec("faster", "Playback", "Faster", ("]",), lambda w: w.session.change_speed(1)),
    ActionSpec("loop", "Playback", "Loop over the selected event (ping-pong)", ("L",),
               lambda w: w.session.toggle_loop(), checkable=True, button="Loop ⟲"),
    ActionSpec("loop_a", "Playback", "Loop range: mark A here", ("Ctrl+[",),
               lambda w: w.session.mark_loop_point("a")),
    ActionSpec("loop_b", "Playback", "Loop range: mark B here", ("Ctrl+]",),
               lambda w: w.session.mark_loop_point("b")),
    ActionSpec("loop_clear", "Playback", "Loop range: clear (L loops over the event again)",
               ("Ctrl+Shift+L",), lambda w: w.session.clear_loop_range()),
    # J / K / L are the review keys and the loop: the jog/shuttle keys take Shift.
    ActionSpec("shuttle_back", "Playback", "Shuttle: play backwards (again: faster)",
               ("Shift+J",), lambda w: w.session.shuttle(-1)),
    ActionSpec("shuttle_stop", "Playback", "Shuttle: stop", ("Shift+K",),
               lambda w: w.session.shuttle(0)),
    ActionSpec("shuttle_forward", "Playback", "Shuttle: play forwards (again: faster)",
               ("Shift+L",), lambda w: w.session.shuttle(1)),
    ActionSpec("next_event", "Playback", "Next event", ("N",), lambda w: w.session.next_event(1)),
    ActionSpec("previous_event", "Playback", "Previous event", ("P",),
               lambda w: w.session.next_event(-1)),
    ActionSpec("goto", "Playback", "Go to frame…", ("Ctrl+G",), lambda w: w.focus_frame_box()),
    ActionSpec("mark_onset", "Annotate", "Mark onset (new event)", ("I",),
               lambda w: w.session.mark(Boundary.ONSET)),
    ActionSpec("mark_apex", "Annotate", "Mark apex", ("A",),
               lambda w: w.session.mark(Boundary.APEX)),
    ActionSpec("mark_offset", "Annotate", "Mark offset (adds the event)", ("O",),
               lambda w: w.session.mark(Boundary.OFFSET)),
    ActionSpec("move_onset", "Annotate", "Move selected onset here", ("Shift+I",),
               lambda w: w.session.move_selected_boundary(Boundary.ONSET)),
    ActionSpec("move_apex", "Annotate", "Move selected apex here", ("Shift+A",),
               lambda w: w.session.move_selected_boundary(Boundary.APEX)),
    ActionSpec("move_offset", "Annotate", "Move selected offset here", ("Shift+O",),
               lambda w: w.session.move_selected_boundary(Boundary.OFFSET)),
    *(_digit_spec(d) for d in DIGIT_KEYS),
    ActionSpec("quick_entry", "Annotate", "Code AUs by typing (e.g. 4+L12C+R14)", ("C",),
               lambda w: w.au_panel.start_quick_entry()),
    ActionSpec("focus_au_next", "Annotate", "Focus the next AU row", ("Alt+Down",),
               lambda w: w.au_panel.move_focus(1)),
    ActionSpec("focus_au_previous", "Annotate", "Focus the previous AU row", ("Alt+Up",),
               lambda w: w.au_panel.move_focus(-1)),
    *(_intensity_spec(letter) for letter in INTENSITIES),
    ActionSpec("intensity_none", "Annotate", "Focused AU: no intensity", ("Alt+Backspace",),
               lambda w: w.au_panel.set_intensity(None)),
    ActionSpec("side_left", "Annotate", "Focused AU: left side only", ("Alt+L",),
               lambda w: w.au_panel.set_side(Side.LEFT)),
    ActionSpec("side_right", "Annotate", "Focused AU: right side only", ("Alt+R",),
               lambda w: w.au_panel.set_side(Side.RIGHT)),
    ActionSpec("side_both", "Annotate", "Focused AU: both sides", ("Alt+S",),
               lambda w: w.au_panel.set_side(Side.BOTH)),
    ActionSpec("au_onset", "Annotate", "Focused AU: its own onset here", ("Alt+Shift+I",),
               lambda w: w.au_panel.move_au_boundary(Boundary.ONSET)),
    ActionSpec("au_apex", "Annotate", "Focused AU: its own apex here", ("Alt+Shift+A",),
               lambda w: w.au_panel.move_au_boundary(Boundary.APEX)),
    ActionSpec("au_offset", "Annotate", "Focused AU: its own offset here", ("Alt+Shift+O",),
               lambda w: w.au_panel.move_au_boundary(Boundary.OFFSET)),
    ActionSpec("au_span_reset", "Annotate", "Focused AU: span the whole event again",
               ("Alt+Shift+Backspace",), lambda w: w.au_panel.reset_au_span()),
    ActionSpec("fixed_reference", "Annotate", "Use this frame as the fixed reference", ("R",),
               lambda w: w.use_fixed_reference()),
    ActionSpec("spot_video", "Review", "&Spot micro-expressions in this video", ("Ctrl+Shift+S",),
               lambda w: w.spot_video()),
    ActionSpec("suggest", "Review", "Suggest &what to review (from the model's predictions)",
               ("Ctrl+Shift+R",), lambda w: w.suggest_review()),
    ActionSpec("review_next", "Review", "Next item of the review queue", ("J",),
               lambda w: w.session.review.step(1), button="Next ▶  J"),
    ActionSpec("review_previous", "Review", "Previous item of the review queue", ("K",),
               lambda w: w.session.review.step(-1), button="◀ Previous  K"),
    ActionSpec("review_accept", "Review", "Accept the item (new event, or event reviewed)", ("Y",),
               lambda w: w.accept_review_item(), button="✓ Accept  Y"),
    ActionSpec("review_reject", "Review", "Reject the item and go to the next", ("X",),
               lambda w: w.session.review.reject(), button="✗ Reject  X"),
    ActionSpec("agreement", "Review", "Inter-coder &agreement… (Enter compares)",
               ("Ctrl+Shift+K",), lambda w: w.show_panel("agreement", w.agreement_panel.coder_a)),
    ActionSpec("blind", "View", "&Blind coding mode (hide the model and the other coders)",
               ("Ctrl+Shift+B",), lambda w: w.set_blind(w.actions["blind"].isChecked()),
               checkable=True),
    ActionSpec("event_table", "View", "&Event table (sort, edit, jump, delete)", ("Ctrl+T",),
               lambda w: w.show_event_table()),
    ActionSpec("heatmap", "View", "PTA &heatmap", ("H",), lambda w: w.sync_overlays(),
               checkable=True),
    ActionSpec("regions", "View", "AU &regions", ("G",), lambda w: w.sync_overlays(),
               checkable=True),
    ActionSpec("landmarks", "View", "&Landmarks", ("M",), lambda w: w.sync_overlays(),
               checkable=True),
    ActionSpec("face_box", "View", "Face &box", ("B",), lambda w: w.sync_overlays(),
               checkable=True),
    ActionSpec("hud", "View", "Frame HUD (frame, time, reference, model)", ("D",),
               lambda w: w.video_view.hud.setVisible(w.actions["hud"].isChecked()),
               checkable=True),
    ActionSpec("heatmap_next_au", "View", "Heatmap: next AU", ("Tab",),
               lambda w: w.cycle_heatmap_au(1)),
    ActionSpec("fit", "View", "Fit frame", ("F",), lambda w: w.video_view.fit()),
    ActionSpec("zoom_in", "View", "Zoom in", ("+", "="), lambda w: w.video_view.zoom(1.25)),
    ActionSpec("zoom_out", "View", "Zoom out", ("-",), lambda w: w.video_view.zoom(0.8)),
    ActionSpec("text_larger", "View", "Larger text", ("Ctrl++", "Ctrl+="),
               lambda w: w.view.scale_font(1)),
    ActionSpec("text_smaller", "View", "Smaller text", ("Ctrl+-",),
               lambda w: w.view.scale_font(-1)),
    ActionSpec("text_normal", "View", "Normal text size", ("Ctrl+0",),
               lambda w: w.view.scale_font(0)),
    ActionSpec("model_card", "Model", "Model &card…", ("Ctrl+M",),
               lambda w: w.show_model_card()),
    ActionSpec("finetune", "Model", "&Fine-tune on my corrections…", ("Ctrl+Shift+F",),
               lambda w: w.show_finetune_dialog()),
    ActionSpec("distill", "Model", "&Distil a student for dense traces…", (),
               lambda w: w.ask_student_name()),
    ActionSpec("model_versions", "Model", "Model &versions (roll back; Enter activates)…",
               ("Ctrl+Shift+M",), lambda w: w.show_panel("versions", w.versions_panel.tree)),
    ActionSpec("shortcuts", "Help", "&Shortcuts…", ("F1", "?"), lambda w: w.show_shortcuts()),
    ActionSpec("about", "Help", "&About MicroAU Studio", (), lambda w: w.show_about()),
)


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    """One QAction per spec (added to the window so its keys work everywhere in it), plus the
    undo stack's Undo/Redo actions, whose text follows the command on top of the stack."""
    actions: dict[str, QAction] = {}
    undo = window.session.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcuts([QKeySequence("Ctrl+Z")])
    redo = window.session.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    for name, action in (("undo", undo), ("redo", redo)):
        action.setObjectName(name)
        action.setProperty("menu", "Edit")
        action.setProperty("label", name.capitalize() + " (menu shows the command)")
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        window.addAction(action)
        actions[name] = action
    for spec in ACTION_SPECS:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        action.setProperty("menu", spec.menu)
        action.setProperty("label", spec.text)  # the dialog's name even when the text changes
        action.setShortcuts([QKeySequence(k) for k in spec.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(spec.checkable)
        if spec.button:
            action.setIconText(spec.button)
        if spec.run is not None:
            run = spec.run
            action.triggered.connect(lambda _checked=False, run=run: window.run_guarded(run))
        window.addAction(action)
        actions[spec.name] = action
    return actions


def shortcut_rows(actions, include_unbound: bool = False) -> list:
    """(menu, command, keys) for every action that has a key, in menu order; with
    `include_unbound`, (menu, command, keys, action) for every named action (keys may be "")."""
    rows = []
    for action in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        if keys or (include_unbound and action.objectName()):
            menu = action.property("menu") or ""
            label = action.property("label") or action.text()
            row = (menu, label.replace("&", ""), ", ".join(keys))
            rows.append(row + (action,) if include_unbound else row)
    order = {menu: i for i, menu in enumerate(MENUS)}
    return sorted(rows, key=lambda r: order.get(r[0], len(MENUS)))
