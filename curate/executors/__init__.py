"""Where work runs: datatrove executors for local, Ray and Slurm (`executor.kind`), and their config
section. The pipeline, and so the output, is the same on each."""
