"""Random damage to a valid file's bytes, drawn by hypothesis: the fuzz tests of the IDX and checkpoint readers."""
from hypothesis import strategies as st

ALL_KINDS = ("truncate", "set", "insert", "delete", "append")


def mutate(content: bytes, data, kinds=ALL_KINDS) -> bytes:
    """Apply 1–4 random edits of the given kinds (truncations, byte changes, insertions, deletions, appends)."""
    content = bytearray(content)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(list(kinds)))
        position = data.draw(st.integers(0, len(content)))
        if kind == "truncate":
            del content[position:]
        elif kind == "set" and position < len(content):
            content[position] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            content[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del content[position:position + data.draw(st.integers(1, 8))]
        elif kind == "append":
            content += data.draw(st.binary(min_size=1, max_size=8))
    return bytes(content)
