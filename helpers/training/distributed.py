"""Several processes (torchrun, DistributedDataParallel) or one, behind one small interface, so the training
loop reads the same either way: rank 0 writes files and prints, the others train and wait at barriers.

Used by notebook 05 (through helpers.training.loop); `torchrun --nproc_per_node N -m helpers train ...`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run folder and prints."""
        return self.rank == 0

    @classmethod
    def start(cls) -> Processes:
        """Join the process group torchrun describes (WORLD_SIZE > 1); one process otherwise."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(torch.distributed.get_rank() if world > 1 else 0, world)

    def device(self) -> torch.device:
        """This process's GPU (LOCAL_RANK), else the CPU."""
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")

    def log(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.main:
            print(message)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as the loop calls it: DistributedDataParallel across processes, else itself."""
        if not self.distributed:
            return model
        # UNETR's ViT keeps parameters the segmentation output never uses
        return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def finish(self) -> None:
        """Wait for every process, then leave the process group."""
        if self.distributed:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
