"""The ``main`` every node shares: start rclpy, build the node, spin until shutdown, exit cleanly."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
import rclpy.executors
from rclpy.node import Node


def run_node(
    name: str,
    make_node: Callable[[], Node],
    startup_errors: tuple[type[BaseException], ...] = (Exception,),
    args=None,
    refusals: tuple[type[BaseException], ...] = (),
) -> int:
    """Run the node ``make_node()`` builds until Ctrl-C or shutdown; return the process exit code.

    A ``startup_errors`` exception while building it (bad parameters, no camera, an unusable store) is printed
    as one line ``NAME: message`` on stderr and the exit code is 2, so a launch file shows why instead of a
    traceback and ``respawn`` does not turn it into a crash loop. A ``refusals`` exception raised while spinning
    (e.g. the policy node finding that the checkpoint it connected to does not fit its parameters) ends the
    node the same way.
    """
    rclpy.init(args=args)
    try:
        node = make_node()
    except startup_errors as exc:
        _say(name, exc)
        rclpy.try_shutdown()
        return 2
    code = 0
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except refusals as exc:
        _say(name, exc)
        code = 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return code


def _say(name: str, exc: BaseException) -> None:
    print(f"{name}: {' '.join(str(exc).split())}", file=sys.stderr)
