"""``warmup()``: import LiteLLM in the background at application start.

``import creative_services`` loads no LiteLLM, so the first call pays for importing it (1-3 s on
a typical machine, more on a busy one). Call :func:`warmup` where the application starts
(Django ``AppConfig.ready()``, a FastAPI lifespan, a Celery ``worker_process_init`` handler) and
that import happens in a daemon thread while the application carries on::

    import creative_services
    creative_services.warmup()             # returns at once
    creative_services.warmup(wait=True)    # or block until LiteLLM is ready (e.g. in a script)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from typing import Any

__all__ = ["warmup"]

_lock = threading.Lock()
_future: concurrent.futures.Future[None] | None = None


def warmup(*, wait: bool = False, timeout: float | None = None) -> concurrent.futures.Future[None]:
    """Import LiteLLM (and the modules the first call needs) in a background thread.

    Idempotent: every call returns the same :class:`concurrent.futures.Future`, which is done
    once LiteLLM is imported (its exception, if the import failed). With ``wait=True`` this
    blocks until then (at most ``timeout`` seconds) and re-raises an import failure. Calls made
    meanwhile simply wait for the same import; nothing is imported twice.

    Raises (only with ``wait=True``): TimeoutError when ``timeout`` passes first; the import's
    own error (e.g. ImportError) when it failed.
    """
    global _future
    with _lock:
        future = _future
        if future is None or (os.getpid() != _pid and not future.done()):
            future = _future = _start()
    if wait:
        future.result(timeout)
    return future


_pid = os.getpid()


def _start() -> concurrent.futures.Future[None]:
    global _pid
    _pid = os.getpid()
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            from creative_services.client import _import_dependencies

            _import_dependencies()
        except BaseException as exc:
            future.set_exception(exc)
            return
        # Best effort: one offline (mock) completion on the library's loop imports the modules
        # LiteLLM loads lazily on its first call and starts the loop thread.
        with contextlib.suppress(Exception):
            _first_call()
        future.set_result(None)

    threading.Thread(target=run, name="creative-services-warmup", daemon=True).start()
    return future


def _first_call() -> None:
    from creative_services import _litellm, _sync

    litellm: Any = _litellm.load()

    async def mock() -> None:
        await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "warmup"}],
            mock_response="ok",
            api_key="warmup-no-request-is-made",
        )

    _sync.run_sync(mock())
