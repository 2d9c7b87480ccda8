"""The scale benchmark (`python -m benchmarks.bench_scale`), by concern.

constants (the deployed pipeline's numbers), containers (Lambda containers as processes), sources
(SQS, async invocations, the schedule, and the simulation loop), account (the moto account),
runs (what one scenario measured), scenarios (running them), report (tables and verdict).
"""
