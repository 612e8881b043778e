"""Every error pocketcheck raises, in one place.

Each class also inherits the builtin it semantically is, so callers that only
know Python's own exceptions still catch it (as gpiozero does).
"""


class PocketcheckError(Exception):
    """Base of every pocketcheck error; its message is safe to show a user."""


class NativeError(PocketcheckError, RuntimeError):
    """The C core returned an unexpected status."""


class CaptureOpenError(PocketcheckError, OSError):
    """A capture file or interface could not be opened."""


class CaptureFormatError(PocketcheckError, ValueError):
    """A file is not a capture that libpcap can read."""


class CaptureTruncatedError(PocketcheckError, EOFError):
    """A capture ends in damage; the events before the damage were delivered."""


class FilterError(PocketcheckError, ValueError):
    """A BPF capture filter does not compile."""


class CompiledFileError(PocketcheckError, ValueError):
    """A compiled indicator file is damaged or from another version."""


class LimitError(PocketcheckError, OverflowError):
    """A fixed bound of the core was reached."""


class IocFormatError(PocketcheckError, ValueError):
    """An indicator file is malformed; the message names file, entry and reason."""


class ConfigError(PocketcheckError, ValueError):
    """A configuration file is invalid; the previous configuration stays."""


class CommandError(PocketcheckError, OSError):
    """An external program failed; carries argv, exit code and the tail of stderr."""

    def __init__(self, message, argv=(), returncode=None, stderr_tail=""):
        super().__init__(message)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class HotspotError(PocketcheckError, OSError):
    """The hotspot or its simulation could not be set up or used."""


class UsbError(PocketcheckError, OSError):
    """A USB stick could not be used; ``kind`` says how (full, readonly, pulled, mismatch, unreadable; "" unknown)."""

    kind = ""


class UpdateError(PocketcheckError, ValueError):
    """An indicator update was refused; ``reason`` says why (unsigned, signature, older, invalid, unreadable)."""

    reason = "invalid"


class ReportIntegrityError(PocketcheckError, ValueError):
    """A report folder does not match its manifest or signature."""


class HardwareError(PocketcheckError, OSError):
    """The button, LEDs or display could not be opened (wrong bus, address or pin)."""
