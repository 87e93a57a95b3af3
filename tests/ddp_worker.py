"""One torchrun-like worker for tests/test_distributed.py: the environment torchrun gives a rank,
then the real CLI entry point. (A module of its own, free of pytest, so that the fork server's
children import nothing more than what it preloaded.)"""

from __future__ import annotations

import os

from imagegen_lib import cli


def rank_main(rank: int, argv: list[str], world: int, port: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    status = cli.main(argv)
    if status != 0:
        raise RuntimeError(f"rank {rank}: imagegen exited with {status}")
