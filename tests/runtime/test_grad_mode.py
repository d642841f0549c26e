"""Grad mode belongs to the calling thread, as PyTorch's: no_grad in one thread leaves the others alone."""
import threading

from juanji.runtime import grad_mode


def test_no_grad_in_another_thread_leaves_this_threads_mode_alone():
    inside, release = threading.Event(), threading.Event()
    seen = []

    def evaluate():
        with grad_mode.no_grad():
            seen.append(grad_mode.is_grad_enabled())
            inside.set()
            release.wait(10)
        seen.append(grad_mode.is_grad_enabled())

    other = threading.Thread(target=evaluate)
    other.start()
    assert inside.wait(10)
    assert grad_mode.is_grad_enabled()          # the other thread is inside no_grad right now
    with grad_mode.no_grad():
        release.set()
        other.join()
        assert not grad_mode.is_grad_enabled()  # and its leaving no_grad does not end ours
    assert grad_mode.is_grad_enabled()
    assert seen == [False, True]


def test_a_new_thread_starts_with_grad_enabled():
    seen = []
    with grad_mode.no_grad():
        thread = threading.Thread(target=lambda: seen.append(grad_mode.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_no_grad_nests_and_is_left_on_an_exception():
    try:
        with grad_mode.no_grad():
            with grad_mode.no_grad():
                pass
            assert not grad_mode.is_grad_enabled()
            raise ValueError("inside")
    except ValueError:
        pass
    assert grad_mode.is_grad_enabled()
