"""Developer tools, kept out of the installed `helpers` package: the benchmarks (`python -m tools.bench`, figures in
report/benchmarks.md) and the writer of the repository address into badges and notebook setup cells
(`python -m tools.links`). Run them from the repository root.
"""
