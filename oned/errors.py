"""The errors oned answers with, each with OpenNebula's stable XML-RPC error code.

A handler raises one of these; the RPC layer turns it into ``[False, message, code]``. Anything
else that escapes a handler is logged with its traceback and answered as an internal error.
"""


class OneError(Exception):
    """Base class: ``code`` is the XML-RPC error code of OpenNebula 3.0+ (reference §4.4)."""

    code = 0x2000

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AuthenticationError(OneError):
    """The session string did not name an enabled user with that password."""

    code = 0x100


class AuthorizationError(OneError):
    """The user is known but may not do this to this object."""

    code = 0x200


class NoSuchObject(OneError):
    """The object named by id does not exist (or is gone)."""

    code = 0x400


class ActionNotAllowed(OneError):
    """The object exists but its state does not allow the action."""

    code = 0x800


class BadCall(OneError):
    """Wrong method, arity, parameter types or parameter values."""

    code = 0x1000


class InternalError(OneError):
    """Something failed inside oned; details are in oned.log, not in the reply."""

    code = 0x2000


class AllocateError(OneError):
    """An object could not be created (name taken, invalid template...).

    NOTE: OpenNebula (3.x to 6.x, RequestManagerAllocate.cc) answers a failed pool allocate and
    a template that does not parse with INTERNAL (0x2000), not with its ALLOCATE code 0x4000.
    """

    code = 0x2000


class TemplateParseError(OneError):
    """A template given to an allocate or update did not parse.

    NOTE: OpenNebula answers these with INTERNAL (0x2000), as any failed allocate.
    """

    code = 0x2000


class TemplateSyntaxError(ValueError):
    """A template did not parse; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"{message} at line {line}, column {column}")
        self.reason = message
        self.line = line
        self.column = column


class ConfigError(ValueError):
    """oned.conf holds a wrong value; the message names the attribute and the line."""
