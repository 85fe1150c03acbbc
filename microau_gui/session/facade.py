"""How `ProjectSession` hands a call on to one of its parts, in one line per method.

Owns: `forward`. May import the standard library only.
"""

from __future__ import annotations


def forward(target: str):
    """A method that calls `self.<target>` (a dotted path to a part's method, e.g.
    "playhead.seek") with the same arguments and returns what it returns."""
    path = target.split(".")

    def method(self, *args, **kwargs):
        owner = self
        for name in path:
            owner = getattr(owner, name)
        return owner(*args, **kwargs)

    method.__name__ = path[-1]
    method.__doc__ = f"Calls `{target}`."
    return method
