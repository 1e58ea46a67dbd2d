"""Run a Python module with writable+executable memory refused (Linux PR_SET_MDWE, 6.3+).

The kernel's counterpart of the units' MemoryDenyWriteExecute=yes: after the prctl no
mapping may be writable and executable at once, nor become executable later. Usage:
    python wx_guard.py MODULE|SCRIPT.py [ARGS...]   (exit 3: the kernel has no PR_SET_MDWE)
"""
from __future__ import annotations

import ctypes
import mmap
import runpy
import sys

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1

if __name__ == "__main__":
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(3)
    try:  # the guard must bite before anything else runs under it
        mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        sys.exit(4)
    except OSError:
        pass
    sys.argv = sys.argv[1:]
    if sys.argv[0].endswith(".py"):
        runpy.run_path(sys.argv[0], run_name="__main__")
    else:
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
