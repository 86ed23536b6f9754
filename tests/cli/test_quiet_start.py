"""TensorFlow's start-up INFO lines (absl, which ignores TF_CPP_MIN_LOG_LEVEL)
stay off the commands' stderr; other stderr lines, and --debug, keep theirs."""

import subprocess
import sys

PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, check=True)


def test_informational_lines_are_dropped_and_the_rest_written_back():
    result = python(
        "import os\n"
        "from cli.quiet_start import informational_lines_dropped\n"
        "with informational_lines_dropped():\n"
        f"    os.write(2, b'{PREAMBLE}\\n'\n"
        "             b'I0000 00:00:1796310186.825932    3328 port.cc:153] oneDNN on.\\n'\n"
        "             b'E0000 00:00:1796310186.825932    3328 main.cc:1] a real error\\n'\n"
        "             b'plain text\\n')\n"
        "os.write(2, b'after\\n')\n")
    assert result.stderr == (
        "E0000 00:00:1796310186.825932    3328 main.cc:1] a real error\nplain text\nafter\n")


def test_importing_tensorflow_under_the_cli_prints_nothing_unless_debug():
    code = ("import cli.main, tensorflow, importlib.machinery\n"
            "assert isinstance(tensorflow.__loader__, importlib.machinery.SourceFileLoader)\n"
            "print(tensorflow.constant(2).numpy() + 1)\n")
    quiet = python(code)
    assert quiet.stdout == "3\n"
    assert PREAMBLE not in quiet.stderr and "] " not in quiet.stderr, quiet.stderr
    debug = python(code, "--debug")  # what the filter removes is really there
    assert PREAMBLE in debug.stderr
