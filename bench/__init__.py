"""fityard's benchmark suite: `make bench` (python -m bench).

Every figure is a ratio against a baseline measured in the same run on the
same machine, so results from different machines can be compared.
"""
