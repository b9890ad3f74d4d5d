"""The one base class for errors a user can cause and fix: bad config, a missing input or dataset,
an unusable tokens directory, an out-of-range argument.

Every package raises its user errors as subclasses of `TokenmillError` (it lives here, at the bottom
of the package graph, so pipeline/, tokenizer/, model/ and flows/ can all import it). The CLI turns a
`TokenmillError` into one line naming the file or setting; anything else is a bug and keeps its
traceback. Subclasses also derive from the builtin they replace (ValueError, FileNotFoundError), so
callers that catch those still do.
"""

from __future__ import annotations


class TokenmillError(Exception):
    """A problem in what the user asked for or pointed at; the message is one line that names it."""


class UsageError(TokenmillError, ValueError):
    """An argument or setting outside what the command accepts."""


class MissingFileError(TokenmillError, FileNotFoundError):
    """A file or folder a command needs is not where the user pointed."""


class RunExistsError(TokenmillError, FileExistsError):
    """The output folder already holds a run or dataset the command would overwrite."""
