"""`igw-epp --workers N`: N processes serve ext_proc on one port and share one view of the pool.

`Supervisor` (the parent) starts and restarts the workers; `Peers` (in each worker) shares the
routing state among them; `WorkerRole` says which worker a process is. The design, its measured
costs and its limits: docs/concepts/workers.md.
"""

from igw.epp.workers.peers import FLUSH_S, Peers, WorkerRole
from igw.epp.workers.supervisor import Supervisor, die_with_parent

__all__ = ["FLUSH_S", "Peers", "Supervisor", "WorkerRole", "die_with_parent"]
