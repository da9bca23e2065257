"""The names of the files in a QEMU's run directory (``/run/pyvirt/qemu/NAME/``).

Nothing but constants and no imports: the smallest processes that look into a run directory
(the first stage of a migration destination's watcher, :mod:`pyvirt.drivers.qemu.arrival`)
use them without loading :mod:`pyvirt.drivers.qemu.runtime`, which re-exports them.
"""

RUNTIME_FILE = "runtime.json"
EXIT_FILE = "exit.json"
DESTROY_INTENT_FILE = "destroying"
POLICY_FILE = "policy.json"
#: an incoming migration's destination runs the guest the moment its state is in: the
#: watcher, already connected, sends ``cont`` on QEMU's MIGRATION completed (and removes it)
RUN_ON_ARRIVAL_FILE = "run-on-arrival"
#: the watcher took :data:`RUN_ON_ARRIVAL_FILE` (renamed it) and sends ``cont``
RUN_ON_ARRIVAL_SENT_FILE = "run-on-arrival.sent"
#: then its note that the ``cont`` succeeded: the guest runs (the destination's finish then
#: needs no monitor session of its own)
ARRIVED_FILE = "arrived"
#: a request to the watcher of a destination paused in post-copy: ``{"uri": URI}`` for
#: ``migrate-recover``, which it sends out-of-band on its own connection (a new monitor
#: session cannot even start while QEMU's main loop waits for a page that does not come)
RECOVER_FILE = "postcopy-recover"
#: the watcher's answer: ``{"ok": true}`` or ``{"error": MESSAGE}``
RECOVER_DONE_FILE = "postcopy-recover.done"
PID_FILE = "qemu.pid"
QMP_SOCKET = "qmp.sock"
EVENTS_SOCKET = "events.sock"
#: who watches the QEMU: ``{"pid", "starttime", "connected"}``
WATCHER_FILE = "watch.json"
