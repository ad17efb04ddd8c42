"""Whole-process behaviour in real subprocesses: imports, exit hygiene, the seed example."""

from __future__ import annotations

from creative_services.testing.fake_provider import FakeProvider


def test_import_loads_no_litellm_openai_httpx_django_or_asyncio(run_python):
    result = run_python(
        """
        import sys
        import creative_services
        from creative_services import DictRegistry, DynamicLLMClient, LLMTier
        heavy = ("litellm", "openai", "httpx", "django", "aiohttp", "structlog", "asyncio")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_loads_no_compatibility_module_until_an_old_name_is_used(run_python):
    result = run_python(
        """
        import sys
        import creative_services
        from creative_services import DictRegistry, DynamicLLMClient, LLMTier
        import creative_services.adapters
        hasattr(creative_services, "__wrapped__")  # inspect/doctest probe missing attributes
        compat = ("_compat", "core", "completion", "tier_map", "_relaxed")
        def loaded():
            return sorted(m for m in sys.modules if set(m.split(".")[1:]) & set(compat))
        print(loaded())
        from creative_services import LLMClient
        print(loaded())
        """,
        {},
        "-W",
        "ignore::DeprecationWarning",
    )
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.strip().splitlines()
    assert before == "[]"
    assert "creative_services._compat.llm_client" in after


def test_import_reads_no_environment_and_sets_nothing(run_python):
    result = run_python(
        """
        import os
        before = dict(os.environ)
        import creative_services
        print(before == dict(os.environ))
        """
    )
    assert result.stdout.strip() == "True", result.stderr


def test_seed_example_runs_verbatim_with_only_openai_key(run_python, fake_provider: FakeProvider):
    fake_provider.reply("Hello from the fake")
    result = run_python(
        """
        import asyncio
        from creative_services import DictRegistry, DynamicLLMClient, LLMTier

        async def main():
            prompt = "Say hello"
            registry = DictRegistry.from_env()
            client = DynamicLLMClient(registry)
            response = await client.generate(prompt=prompt, tier=LLMTier.STANDARD)
            content = response.content
            print(content)

        asyncio.run(main())
        """,
        {"OPENAI_API_KEY": "dummy", "OPENAI_BASE_URL": fake_provider.base_url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from the fake"
    assert fake_provider.requests[0].body["model"] == "gpt-4.1-mini"


def test_asyncio_run_twice_exits_without_warnings(run_python, fake_provider: FakeProvider):
    result = run_python(
        """
        import asyncio
        from creative_services import DictRegistry, DynamicLLMClient

        async def main():
            client = DynamicLLMClient(DictRegistry.from_env())
            for _ in range(3):
                await client.generate(prompt="hi", tier="standard")
            async with DynamicLLMClient(DictRegistry.from_env()) as other:
                await other.generate(prompt="hi")

        asyncio.run(main())
        asyncio.run(main())
        """,
        {"OPENAI_API_KEY": "dummy", "OPENAI_BASE_URL": fake_provider.base_url},
        "-W",
        "default",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(fake_provider.requests) == 8


def test_generate_sync_in_plain_script_exits_cleanly(run_python, fake_provider: FakeProvider):
    result = run_python(
        """
        from creative_services import DictRegistry, DynamicLLMClient
        client = DynamicLLMClient(DictRegistry.from_env())
        for _ in range(5):
            print(client.generate_sync(prompt="hi").content)
        """,
        {"OPENAI_API_KEY": "dummy", "OPENAI_BASE_URL": fake_provider.base_url},
        "-W",
        "default",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:5] == ["fake answer"] * 5
    assert result.stderr == ""


def test_forked_child_calls_after_the_parent_did(run_python, fake_provider: FakeProvider):
    # gunicorn --preload and Celery prefork fork after the parent may have made a call.
    result = run_python(
        """
        import os, signal
        from creative_services import DictRegistry, DynamicLLMClient
        client = DynamicLLMClient(DictRegistry.from_env())
        print("parent", client.generate_sync(prompt="before fork").content, flush=True)
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)  # a hang fails the test instead of blocking it
            print("child", client.generate_sync(prompt="in child").content, flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status), flush=True)
        print("parent", client.generate_sync(prompt="after fork").content, flush=True)
        """,
        {"OPENAI_API_KEY": "dummy", "OPENAI_BASE_URL": fake_provider.base_url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "parent fake answer",
        "child fake answer",
        "child exit 0",
        "parent fake answer",
    ]
    assert len(fake_provider.requests) == 3
