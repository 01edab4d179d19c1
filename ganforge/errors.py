"""Errors a user can fix. The CLI prints these without a traceback and exits 2."""


class ConfigError(ValueError):
    """Bad input: an unknown key or name, a wrong type, a missing file, a value out of range."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read (truncated, corrupt, or not a ganforge checkpoint)."""
