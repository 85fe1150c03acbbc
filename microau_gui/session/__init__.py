"""The open project as QObjects: undo stack, workers in QThreads, signals. No widgets.

Owns: `ProjectSession`, its workers and their messages, the playback clock and the annotation
rules.
May import inference and everything below it, PySide6.QtCore and the undo framework of
PySide6.QtGui (QUndoStack lives there in Qt 6; it needs no widget). Never imports gui.

Modules:
- session: `ProjectSession`, the one object the window talks to (playhead, selection, edits
  on the QUndoStack, model, long jobs) and its signals;
- messages: the frozen requests and responses exchanged with the workers;
- workers: the `Worker` base (`failed` signal), `LatestOnly` mailbox and `WorkerThread`;
- frame_loader / inference_worker / import_worker: the workers;
- playback: the elapsed-time playback clock; annotation: pure annotation rules;
- opening: what a path opens and where a bare video's project lives; models: model choices.
"""
