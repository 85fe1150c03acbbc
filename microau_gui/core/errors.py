"""The one exception type for user mistakes (bad path, unreadable sheet, wrong checkpoint ...),
and the message format of errors that are not the user's.

Owns: `UserError`, `DETAILS_MARKER`, `INTERNAL_ERROR`, `internal_error_text`, `split_details`.
May import only the standard library.

Raise it with a one-line message that says what is wrong and what to do. The CLI prints it
without a traceback and exits non-zero; the GUI shows it in a message box.
"""

import traceback


class UserError(Exception):
    """A problem the user can fix. `str(err)` is one line, ending with what to do."""


# An error that is not the user's (a bug) reaches the window as one message: a sentence anyone
# can read, then this marker, then the exception and traceback for a bug report. The window
# shows the sentence and puts the rest behind a "Show Details..." button; the status bar, job
# summaries and the banner show the sentence only (`split_details`).
DETAILS_MARKER = "\n\n--- details ---\n"
INTERNAL_ERROR = ("an internal error stopped it (a fault in MicroAU Studio, not in your input); "
                  "the window carries on. If it happens again, report it with the details")


def internal_error_text(err: BaseException) -> str:
    """The message for an unexpected exception: `INTERNAL_ERROR`, the marker, the traceback."""
    details = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
    return INTERNAL_ERROR + DETAILS_MARKER + details


def split_details(message: str) -> tuple[str, str]:
    """(the sentence for the user, the details; "" when there are none)."""
    sentence, _marker, details = message.partition(DETAILS_MARKER)
    return sentence, details
