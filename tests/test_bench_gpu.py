"""`make bench-gpu --smoke`: every step of the GPU benchmark runs, on the CPU at toy size."""

from __future__ import annotations

from bench import bench_gpu


def test_the_gpu_benchmark_runs_every_step_at_toy_size(tmp_path):
    out = tmp_path / "gpu.md"
    report = bench_gpu.main(["--smoke", "--out", str(out)])
    assert out.read_text() == report
    rows = [line for line in report.splitlines() if line.startswith(("| compiled", "| eager"))]
    assert [tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows] == [
        ("compiled", "2"), ("eager", "2"), ("compiled", "4"), ("eager", "4")]
    assert "torch " in report and "CUDA " in report and "smoke run" in report
