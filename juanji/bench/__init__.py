"""The benchmark harness: juanji against PyTorch CPU, side by side (``python -m juanji.bench``).

One job per module: ``rows`` (what is timed), ``measure`` (timing and memory), ``juanji_side`` and
``torch_side`` (each framework behind one small interface), ``torch_models`` (the hand-written PyTorch
networks, the same as juanji's), ``workers`` (the rows, the epoch or a scaling point in a worker process),
``breakdown`` (where one juanji train step goes; needs no torch), ``correctness`` (the gate before timing), ``report``
(machine and tables), ``scaling`` (how the cost grows: slopes, table and plot of ``--scaling``) and
``conductor`` (the command line: spawns the workers, writes the report).
"""
