"""Turn library errors into one-line CLI errors (tracebacks only with --debug)."""

import functools

import click

# Errors a user can fix from the message alone.
# ImportError: an optional dependency that is not installed (the message says how).
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, TypeError, OSError,
               ImportError)
DEBUG_HELP = "Show full tracebacks instead of one-line errors."
_DEBUG = "keras_attention.debug"  # the key in click's ctx.meta, shared by every context


def _set_debug(ctx, param, value):
    if value:
        ctx.meta[_DEBUG] = True


def debug_option():
    """A ``--debug`` flag for a command or group: wherever it is given
    (``keras-attention --debug translate ...`` or ``... translate --debug``),
    ``user_errors`` lets tracebacks through."""
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                        callback=_set_debug, help=DEBUG_HELP)


def add_debug_option(command):
    """Add ``--debug`` to ``command`` and, for a group, to all its commands."""
    command.params.append(debug_option())
    for sub in getattr(command, "commands", {}).values():
        add_debug_option(sub)
    return command


def user_errors(command):
    """Decorator: report ``USER_ERRORS`` as ``click.ClickException`` (exit 1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if click.get_current_context().meta.get(_DEBUG):
            return command(*args, **kwargs)
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise click.ClickException(str(message).splitlines()[0]) from None

    return wrapper
