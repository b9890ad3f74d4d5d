"""The model side of tokenmill: a compact decoder-only transformer and the loop that trains it.

gpt.py         the model and its GPTConfig shapes (presets: tiny, small, 50M, 124M)
loss.py        output head + cross-entropy a slice of rows at a time (no full logits)
device.py      pick_device: the one place that decides CPU or which GPU
config.py      TrainConfig: every training setting, loaded from TOML or YAML
data.py        batches from a tokens directory (tokenizer/tokensdir.py opens it)
train.py       train(tokens_dir, out_dir, cfg) -> TrainResult: setup, then a flat loop
checkpoint.py  exact-resume checkpoints (weights_only loading)
metrics.py     RUN/metrics.parquet and the console table
ddp.py         several processes under torchrun
plan.py        FLOPs, MFU; a budget (FLOPs, or seconds on this device) -> model size and config
sample.py      text from a trained run
"""
