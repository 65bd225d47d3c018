"""The training stage: what the network reads, the network, the loop that trains it, and the run's record (05).

- `transforms`     the transform chain: loading, patch sampling, augmentation, the cached dataset
- `models`         networks by name (UNETR, SwinUNETR, UNet, SegResNet), the sliding window over a whole volume and
                   the precision, shared by validation and inference
- `loop`           the one training loop (`TrainConfig`, `train`), for the notebook, the command line and torchrun
- `run_record`     the run's `config.json`: written by training, read (old records upgraded) by inference and the report
- `checkpoints`    checkpoints written atomically and loaded without running code
- `random_state`   the random state saved in each checkpoint, so a resumed run draws the same numbers
- `batch_guard`    the last gate before the network: a batch with bad values stops training, named
- `resources`      will it fit? the network, memory and disk, checked and printed before the first step
- `distributed`    one process or several (DistributedDataParallel) behind one interface
- `run_log`        `metrics.jsonl` (and TensorBoard when installed)
- `postprocess`    the clean-up of a prediction, chosen per structure on the validation data (used by inference)
"""
