"""No asynchronous signal handler in Forge's sources (docs/architecture.md, "Stopping on request").

A handler runs on the stack of whichever thread the kernel picks, and oneDNN's JIT GEMM keeps live
data below the stack pointer: a handler's frame corrupted the heap on Ctrl-C. Signals are blocked
and taken with sigwait on a thread instead (train/stop_request.cpp, cli/cmd_serve.cpp). Setting a
signal's default action or ignoring it is fine.

usage: check_signal_handlers.py SOURCE_DIR [EXTRA_FILE ...]   exits 1 naming each handler found
"""
import os
import re
import sys

FOLDERS = ["core", "data", "infer", "kernels", "models", "parallel", "peft", "train", "cli", "bench"]
# Synchronous faults only: the simulated device's SIGSEGV/SIGBUS run on the faulting thread, in its code.
ALLOWED = {os.path.join("kernels", "sim", "sim.cpp")}
INSTALLS = [
    re.compile(r"\bsigaction\s*\(\s*[^,]+,\s*&"),                            # sigaction(SIG, &sa, ...)
    re.compile(r"\b(?:std::)?signal\s*\(\s*[^,]+,\s*(?!SIG_DFL\b|SIG_IGN\b)\w"),  # signal(SIG, handler)
]


def handlers(path, shown):
    found = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            code = line.split("//")[0]
            if any(p.search(code) for p in INSTALLS):
                found.append(f"{shown}:{n}: installs a signal handler: {line.strip()}")
    return found


def main(src, extra):
    found = []
    for folder in FOLDERS:
        for root, _, files in os.walk(os.path.join(src, folder)):
            for f in files:
                if f.endswith((".cpp", ".h", ".cu", ".cuh")):
                    rel = os.path.relpath(os.path.join(root, f), src)
                    if rel not in ALLOWED:
                        found += handlers(os.path.join(root, f), rel)
    for path in extra:
        found += handlers(path, path)
    for line in found:
        print(line)
    if found:
        print("block the signal in every thread and sigwait on one (see train/stop_request.cpp)")
        return 1
    print("no signal handlers outside", ", ".join(sorted(ALLOWED)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
