"""The allocator settings of reading and matching: set once on the way in, undone on the way out."""

import threading

from pmed.genomics.prs import _memory


def test_lean_heap_is_reentrant_and_shared_between_threads(monkeypatch):
    calls = []
    monkeypatch.setattr(_memory, "_mmap_threshold", calls.append)
    inside = threading.Barrier(2)

    def work():
        with _memory.lean_heap():
            inside.wait()  # both threads are inside at the same time
            with _memory.lean_heap():
                pass

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [128 * 1024, 32 * 1024 * 1024]


def test_decorated_function_returns_its_value_and_releases_on_error(monkeypatch):
    calls = []
    monkeypatch.setattr(_memory, "_mmap_threshold", calls.append)
    assert _memory.in_lean_heap(lambda x: x + 1)(1) == 2

    @_memory.in_lean_heap
    def fails():
        raise ValueError("bad input")

    try:
        fails()
    except ValueError:
        pass
    assert calls == [128 * 1024, 32 * 1024 * 1024] * 2 and _memory._depth == 0
