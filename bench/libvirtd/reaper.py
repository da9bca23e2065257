#!/usr/bin/env python3
"""Child-subreaper wrapper: run a command; adopt and immediately reap every orphaned
descendant (PR_SET_CHILD_SUBREAPER), as systemd/init does on a normal host.

Why: on this VM PID 1 (a Firecracker init) reaps orphaned zombies only every ~1.7 s.
libvirt daemonizes QEMU (it is re-parented to the nearest subreaper) and `virsh destroy`
polls kill(pid, 0) every 200 ms until the pid is gone, so without a prompt reaper every
destroy (and every capability-probe teardown) waits for PID 1's next sweep.
Exits when it has no children left.
"""

import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        continue
