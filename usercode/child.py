"""Child side of the sandbox: run one entry point of :mod:`usercode.entrypoints` on its payload."""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

from usercode.sandbox import OUTPUT, PAYLOAD


def _child_main(entry: str, scratch: Path, max_processes: int | None = None) -> int:
    """Child side: run ``usercode.entrypoints.<entry>`` on the payload and write the answer.

    ``max_processes`` (given inside bubblewrap's fresh user namespace, where RLIMIT_NPROC counts only
    this sandbox's tasks) caps the processes and threads the user code may have at once.
    """
    if max_processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    sys.path.insert(0, str(scratch))
    output = scratch / OUTPUT
    try:
        entrypoints = importlib.import_module("usercode.entrypoints")
        function = getattr(entrypoints, entry)
        payload = json.loads((scratch / PAYLOAD).read_text())
        result = function(payload, scratch)
        answer: dict[str, Any] = {"ok": True, "result": result}
    except MemoryError as exc:
        answer = {"ok": False, "type": "MemoryError", "error": str(exc) or "MemoryError",
                  "traceback": traceback.format_exc()}
    except BaseException as exc:  # the user's code may raise anything; report it, never hang
        answer = {"ok": False, "type": type(exc).__name__, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
        traceback.print_exc()
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(answer, default=float))
    os.replace(tmp, output)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None))
