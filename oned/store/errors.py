"""What the store raises: one family, so the daemon can tell a database fault from a bug."""


class StoreError(Exception):
    """The database refused or failed; the message is one line that says where and why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DuplicateName(StoreError):
    """A UNIQUE name is taken; the transaction was rolled back and nothing was written."""

    def __init__(self, kind: str, name: str):
        super().__init__(f'{kind} name "{name}" is already taken')
        self.kind = kind
        self.name = name


def driver_reason(exc: BaseException) -> str:
    """The database driver's own message on one line, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
