"""How much memory juanji lets input from outside (files, arguments) make it allocate."""
import os
import resource

BUDGET_FRACTION = 0.75      # of the physical memory, or of the address-space limit (ulimit -v) when lower


def memory_budget() -> int:
    """Bytes one juanji process may plan to allocate: BUDGET_FRACTION of the physical memory, or of the
    address space left under ``ulimit -v`` when that is less."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        physical = min(physical, max(0, soft - _address_space_in_use()))
    return int(physical * BUDGET_FRACTION)


def _address_space_in_use() -> int:
    """This process's virtual memory size (what RLIMIT_AS counts), 0 where /proc does not tell."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return 0


def mib(count: int) -> str:
    """A byte count for a message: '3.2 GiB', '812 MiB', '0.2 MiB'."""
    if count >= 2 ** 30:
        return f"{count / 2 ** 30:,.1f} GiB"
    return f"{count / 2 ** 20:,.{0 if count >= 10 * 2 ** 20 else 1}f} MiB"
