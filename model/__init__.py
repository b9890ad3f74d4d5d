"""The model side of tokenmill: a compact decoder-only transformer and the loop that trains it.

gpt.py         the model and its GPTConfig shapes (presets: tiny, small, 50M, 124M)
config.py      TrainConfig: every training setting, loaded from TOML or YAML
data.py        batches from a tokens directory (train.bin / val.bin / meta.json)
train.py       train(tokens_dir, out_dir, cfg) -> TrainResult: the flat training loop
checkpoint.py  exact-resume checkpoints (weights_only loading)
metrics.py     RUN/metrics.parquet and the console table
ddp.py         several processes under torchrun
plan.py        FLOPs, MFU, and a budget -> model size, token count and config
sample.py      text from a trained run
"""
