"""Tokenizer stage: SentencePiece trained on a sample of a dataset version (or text files), and
the corpus packed into memory-mappable token files.

- tokenizer.cli        tokenize_dataset / tokenize_text: the `tokenmill tokenize` command
- tokenizer.build      one run: sample -> train -> pack -> meta.json, atomic, no-op when up to date
- tokenizer.sources    dataset and text-file inputs, train/val split, the tokenizer sample
- tokenizer.sample     deterministic choices by hash; training sentences bounded in bytes
- tokenizer.train      SentencePiece settings that keep any UTF-8 text intact
- tokenizer.tokensdir  the token directory: its files, meta.json, tokenizer loading (load_codec)
- tokenizer.defaults   vocabulary (sized to the text), model type, validation share, sample size
- tokenizer.codec      lossless encode/decode with a trained model
- tokenizer.pack       parallel encode, ordered streaming into the token files
- tokenizer.tokenfile  the .bin/.idx format: TokenFile reader (sample_batch, iter_windows), writer
"""
