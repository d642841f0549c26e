"""Its presence puts tests/ on sys.path (pytest's prepend import mode), so the test folders share
helper modules kept here, such as closeness.py."""
