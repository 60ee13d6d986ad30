"""The GPU half of the checks: scripts that ``benchmarks/gpu_check.sh`` runs on a CUDA machine.

Scripts (each refuses to run without a CUDA GPU, exit code 2): ``env_check``, ``impls_check``,
``sanitize_ops``, ``focal_edges``, ``big_tensor``, ``streams_graphs``.  Libraries (no GPU needed,
tested on the CPU): ``_common`` (result collection, the CUDA guard), ``_junit`` (the junit-XML
verdict of the pytest stages) and ``_reference64`` (chunked float64 references).  See docs/gpu.md.
"""
