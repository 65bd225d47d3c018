"""The training stage: what the network reads, the network, and the loop that trains it (notebook 05).

- `transforms`     the transform chain: loading, patch sampling, augmentation, the cached dataset
- `models`         networks by name (UNETR, SwinUNETR, UNet, SegResNet)
- `loop`           the one training loop (`TrainConfig`, `train`), for the notebook, the command line and torchrun
- `checkpoints`    checkpoints written atomically and loaded without running code
- `random_state`   the random state saved in each checkpoint, so a resumed run draws the same numbers
- `batch_guard`    the last gate before the network: a batch with bad values stops training, named
- `resources`      will it fit? the network, memory and disk, checked and printed before the first step
- `distributed`    one process or several (DistributedDataParallel) behind one interface
- `run_log`        `metrics.jsonl` (and TensorBoard when installed)
- `postprocess`    the clean-up of a prediction, chosen per structure on the validation data
"""
