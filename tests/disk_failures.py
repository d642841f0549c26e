"""Real disk failures for the tests of what a full or unwritable disk costs: a 64 KiB tmpfs (root only), or
RLIMIT_FSIZE where mounting is not permitted."""
import resource
import signal
import subprocess


def mount_tmpfs(path) -> bool:
    """A 64 KiB tmpfs at ``path`` (the folder made if missing); False where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True)
    return mounted.returncode == 0


def no_file_may_grow():
    """In the child (``preexec_fn``): every write past offset 0 fails with EFBIG (SIGXFSZ ignored), a real OS
    failure, without root."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
