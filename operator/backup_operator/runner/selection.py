"""Which paths of a volume a files backup takes: ``--include`` / ``--exclude`` globs.

Semantics (documented for users):

* Patterns are matched with :func:`fnmatch.fnmatchcase` against the POSIX path relative to
  the source directory, without a leading ``./`` (``a/b.txt``). ``*`` and ``?`` match any
  character, ``/`` included, so ``*.log`` matches ``x.log`` and ``a/b/x.log``; ``[...]``
  is a character class. A leading ``./`` or a trailing ``/`` in a pattern is ignored.
* A pattern that matches a directory applies to everything under it.
* Without ``--include`` everything is included; with it, a path is taken when it or one of
  its parent directories matches an include (the parents of taken paths are archived too,
  so their modes and mtimes are kept).
* ``--exclude`` wins over ``--include``; an excluded directory is not descended into.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase


def normalize(pattern: str) -> str:
    """Drop a leading ``./`` and trailing ``/`` from a pattern."""
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.rstrip("/") or pattern


@dataclass(frozen=True)
class Selection:
    """Include and exclude patterns, already normalized."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, include: tuple[str, ...], exclude: tuple[str, ...]) -> "Selection":
        return cls(tuple(normalize(p) for p in include), tuple(normalize(p) for p in exclude))

    def excluded(self, rel: str) -> bool:
        """True when ``rel`` matches an exclude pattern."""
        return any(fnmatchcase(rel, p) for p in self.exclude)

    def included(self, rel: str, parent_included: bool) -> bool:
        """True when ``rel`` is taken, given whether its parent directory was."""
        if parent_included or not self.include:
            return True
        return any(fnmatchcase(rel, p) for p in self.include)
