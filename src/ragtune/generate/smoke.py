"""One real token from the packaged model: run by setup so a bad llama.cpp build fails at install.

    python -m ragtune.generate.smoke

The generation runs in a child process, so a crash inside llama.cpp (a segfault from kernels the
CPU cannot run) becomes a clear message and a non-zero exit instead of killing the caller.
"""

from __future__ import annotations

import signal
import subprocess
import sys

_CHILD = """
from llama_cpp import Llama, llama_print_system_info
from ragtune.generate.llama_cpp import resolve_gguf
llama = Llama(model_path=str(resolve_gguf("builtin:smollm2-135m-instruct")), n_ctx=256, verbose=False)
out = llama.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1, temperature=0)
assert out["usage"]["completion_tokens"] == 1, out
print("llama.cpp ok:", llama_print_system_info().decode().strip())
"""


def smoke_test(timeout_s: float = 120.0, code: str = _CHILD) -> tuple[bool, str]:
    """(ok, what happened): generate one token in a child process and report how it ended."""
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"llama.cpp did not generate one token within {timeout_s:.0f} s"
    if run.returncode == 0:
        return True, run.stdout.strip()
    if run.returncode < 0:
        name = signal.Signals(-run.returncode).name
        return False, f"llama.cpp crashed with {name} generating one token (a build this CPU cannot run)"
    return False, f"llama.cpp failed generating one token:\n{run.stderr.strip()[-2000:]}"


def main() -> int:
    ok, message = smoke_test()
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
