"""The Django app (label ``creative_services``): a database registry, a usage tracker, checks.

Add ``"creative_services.contrib.django"`` to ``INSTALLED_APPS`` and run ``migrate``. The public
names live in :mod:`~creative_services.contrib.django.registry` (``DjangoLLMRegistry``) and
:mod:`~creative_services.contrib.django.tracking` (``DjangoUsageTracker``), also importable from
:mod:`creative_services.adapters`. Importing this package imports nothing from Django.
"""
