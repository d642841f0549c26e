"""How much memory juanji lets input from outside (files, arguments) make it allocate."""
import os
import resource

BUDGET_FRACTION = 0.75      # of the physical memory, or of the address-space limit (ulimit -v) when lower


def memory_budget() -> int:
    """Bytes one juanji process may plan to allocate: BUDGET_FRACTION of what the machine and ulimit allow."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    limit = physical if soft == resource.RLIM_INFINITY else min(physical, soft)
    return int(limit * BUDGET_FRACTION)


def mib(count: int) -> str:
    """A byte count for a message: '3.2 GiB', '812 MiB', '0.2 MiB'."""
    if count >= 2 ** 30:
        return f"{count / 2 ** 30:,.1f} GiB"
    return f"{count / 2 ** 20:,.{0 if count >= 10 * 2 ** 20 else 1}f} MiB"
