"""Does a filter make the model better? Proxy models trained at equal compute on variants of one build.

    variants.py  NAME=FILTER -> the documents of each variant (all / docs / a Polars SQL expression)
    data.py      one tokenizer for every variant; train/validation token files; the eval text
    runs.py      K seeded proxy models per variant, same shape and token count; bits per byte
    report.py    the table (mean, spread over seeds, verdict), results.parquet, the curves' PNG
    ablate.py    the steps in order (`run_ablation`); flows/ablate.py runs them as a Prefect flow

This is FineWeb's method for choosing its filters (small models trained on each variant at equal
compute, compared on held-out text), shipped as a command.
"""
