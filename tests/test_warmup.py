"""``warmup()`` imports LiteLLM in a background thread; importing the package imports none."""

from __future__ import annotations

from creative_services.testing.fake_provider import FakeProvider

# Records which thread first imports litellm (a meta path hook in the child interpreter).
_WATCH_IMPORT = """
import sys, threading
imported_in = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "litellm" and not imported_in:
            imported_in.append(threading.current_thread().name)
        return None
sys.meta_path.insert(0, Watch())
"""


def test_import_and_bridge_import_load_no_litellm(run_python):
    result = run_python(
        """
        import sys
        import creative_services
        from creative_services.adapters import BFAgentLLMBridge
        print(sorted(m for m in sys.modules if m.split(".")[0] == "litellm"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_warmup_imports_litellm_in_a_background_thread_once(run_python):
    result = run_python(
        _WATCH_IMPORT
        + """
import creative_services
assert "litellm" not in sys.modules
future = creative_services.warmup()
assert creative_services.warmup() is future  # idempotent, also while it runs
future.result(300)
assert creative_services.warmup(wait=True) is future
from creative_services import _litellm
print(imported_in, future.exception(), _litellm.needs_load(), "litellm" in sys.modules)
"""
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['creative-services-warmup'] None False True"


def test_a_call_after_warmup_works_and_is_recorded(run_python, fake_provider: FakeProvider):
    fake_provider.reply("warm answer")
    result = run_python(
        """
        import creative_services
        from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker
        creative_services.warmup(wait=True, timeout=300)
        tracker = InMemoryUsageTracker()
        client = DynamicLLMClient(DictRegistry.from_env(), tracker=tracker)
        print(client.generate_sync("hi").content, len(tracker.records))
        """,
        {"OPENAI_API_KEY": "dummy", "OPENAI_BASE_URL": fake_provider.base_url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "warm answer 1"
    assert len(fake_provider.requests) == 1  # the warm-up itself makes no request


def test_warmup_wait_reraises_an_import_failure(run_python):
    result = run_python(
        """
        import sys
        sys.modules["litellm"] = None  # makes "import litellm" raise ImportError
        import creative_services
        try:
            creative_services.warmup(wait=True, timeout=60)
        except ImportError:
            print("ImportError")
        print(isinstance(creative_services.warmup().exception(), ImportError))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["ImportError", "True"]
