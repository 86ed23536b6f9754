"""Turn library errors into one-line CLI errors (tracebacks only with --debug)."""

import functools

import click

# Errors a user can fix from the message alone.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, TypeError, OSError)


def user_errors(command):
    """Decorator: report ``USER_ERRORS`` as ``click.ClickException`` (exit 1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if click.get_current_context().find_root().params.get("debug"):
            return command(*args, **kwargs)
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise click.ClickException(str(message).splitlines()[0]) from None

    return wrapper
