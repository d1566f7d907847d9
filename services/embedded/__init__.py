"""The embedded stack: nats-server, the scheduler, the gateway, N trainers
and the predictors as child processes of one Python process (`fityard up`,
the demo, the tests and bench/).

A newcomer reads it in this order:

- stack.py: EmbeddedStack, what a caller uses: start() chooses the ports,
  starts the children, waits until they serve; stop() stops them in order.
- ports.py: free loopback ports (distinct within a stack), the nats-server
  binary, a pool of predictors as one gRPC target.
- environment.py: each child's environment, written through the settings
  schema (services/common/settings.py), never by retyping FITYARD_ names.
- supervisor.py: the thread that forks every child, restarts the dead with
  backoff, stops them in groups.
- readiness.py: when the stack counts as started (gRPC health), and
  StackError when it does not.

`fityard up`'s console (what it prints while it runs) is services/cli.py's.
"""

from .ports import free_port, nats_server_binary, pool_target
from .readiness import StackError, wait_healthy
from .stack import EXPRESS_TRAINER, STACK_FILE, EmbeddedStack, default_trainers
from .supervisor import RESTART_RESET_AFTER

__all__ = [
    "EXPRESS_TRAINER",
    "RESTART_RESET_AFTER",
    "STACK_FILE",
    "EmbeddedStack",
    "StackError",
    "default_trainers",
    "free_port",
    "nats_server_binary",
    "pool_target",
    "wait_healthy",
]
