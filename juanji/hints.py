"""The "did you mean" hint of every error about an unknown name (model, optimizer, schedule ...)."""
import difflib


def did_you_mean(name: str, known) -> str:
    """``"; did you mean 'adam'?"`` for the closest of ``known`` to ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
