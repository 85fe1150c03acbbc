"""The open project as QObjects: undo stack, workers in QThreads, signals. No widgets.

Owns: `ProjectSession` (a thin facade over the parts below), the parts, the controllers, the one
job runner, the workers and every message they exchange.
May import inference and everything below it, PySide6.QtCore and the undo framework of
PySide6.QtGui (QUndoStack lives there in Qt 6; it needs no widget). Never imports gui. No two
modules here import each other (tests/test_import_graph.py).

Modules:
- session: `ProjectSession`, the one object the window talks to; facade: its one-line forwards;
- parts, each testable without a window: playhead (media, playhead, playback, frame loader
  thread), model_slot (model, predictions on screen, reference policy, inference thread,
  analysis job), annotating (events, selection, I/A/O marking, undoable edits);
- context: `SessionContext`, the narrow view of the session the controllers receive;
- controllers: review (+ review_items: the queues as plain values, persisted in the
  review_candidates table), agreement, finetune_worker, seek_proxy;
- jobs: the one job runner (`JobRunner`, `RequestIds`, `Job`); job functions: import_worker,
  spot_worker, finetune_worker.finetune, seek_proxy.ensure_proxy, agreement.compute_agreement,
  review_items.suggest (analysis runs inside inference_worker);
- messages: the frozen requests, responses and job results; records: the store records the
  window reads;
- workers: the `Worker` base (`failed` signal), `LatestOnly` mailbox and `WorkerThread`;
  frame_loader / inference_worker: the two long-lived workers;
- playback: the elapsed-time playback clock; annotation: pure annotation rules;
- opening: what a path opens and where a bare video's project lives; models: model choices.
"""
