"""Stand-ins for ``keras_attention.app.decoder.Decoder`` in the commands' tests: no model,
each output is its input upper-cased, decoded batch by batch."""


class FakeDecoder:
    task = "translation"

    def __init__(self, *args, **kwargs):
        pass

    def check_lengths(self, lines):
        return 0  # none cut

    def check_controls(self, prefixes=None, constraints=None):
        """Takes no prefixes or constraints (the tests using it give none)."""
        assert prefixes is None and constraints is None

    def before_batch(self, number):
        """Called before batch ``number`` (0, 1, ...) is decoded."""

    def stream(self, lines, batch_size=64, on_batch=None, prefixes=None):
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            self.before_batch(start // batch_size)
            if on_batch is not None:
                on_batch(len(chunk))
            yield [[(line.upper(), 0.0)] for line in chunk]


def stopping_decoder(batches, stop):
    """A ``FakeDecoder`` class that decodes ``batches`` batches, then calls
    ``stop()`` (raise ``KeyboardInterrupt``, kill the process ...)."""

    class StoppingDecoder(FakeDecoder):
        def before_batch(self, number):
            if number == batches:
                stop()

    return StoppingDecoder


def interrupt():
    """Ctrl-C."""
    raise KeyboardInterrupt
