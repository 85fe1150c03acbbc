"""The one exception type for user mistakes (bad path, unreadable sheet, wrong checkpoint ...).

Owns: `UserError`. May import only the standard library.

Raise it with a one-line message that says what is wrong and what to do. The CLI prints it
without a traceback and exits non-zero; the GUI shows it in a message box.
"""


class UserError(Exception):
    """A problem the user can fix. `str(err)` is one line, ending with what to do."""
