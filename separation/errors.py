"""User-facing errors: the CLI prints them as one line ``priorsep: error: <message>``, exit 2."""


class PriorsepError(Exception):
    """A problem with the user's input (file, checkpoint, folder), not a bug."""
