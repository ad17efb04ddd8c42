"""The public surface is small, sorted, documented and exported on purpose."""

from __future__ import annotations

import inspect

import creative_services


def test_all_is_sorted_and_complete():
    names = creative_services.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(creative_services, name), name


def test_every_public_name_has_a_docstring():
    for name in creative_services.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(creative_services, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    assert inspect.getdoc(member), f"{name}.{attr}"


def test_version_comes_from_package_metadata():
    from importlib.metadata import version

    assert creative_services.__version__ == version("creative-services")
