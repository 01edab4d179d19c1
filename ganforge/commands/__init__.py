"""Extra ``ganforge`` subcommands, one module each.

A module here defines ``register(sub)``: it adds its parser to the argparse
sub-parser collection ``sub`` and calls ``set_defaults(run=function)``, where
``function(args) -> int`` is the exit status. ``ganforge.cli`` finds the
modules by listing this package, so adding a command never edits cli.py.
User errors raise ``ganforge.errors.ConfigError`` (exit 2, no traceback).
"""
