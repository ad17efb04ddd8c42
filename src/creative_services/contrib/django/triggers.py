"""Database triggers that bump the registry's version stamp on every change to an LLM table.

They catch what signals miss (``QuerySet.update()``, ``bulk_create()``, raw SQL, other programs)
and commit with the change itself. PostgreSQL gets a row-level constraint trigger deferred to
commit (``DEFERRABLE INITIALLY DEFERRED``) plus a statement-level one on ``TRUNCATE``; SQLite
three row-level ones; on other databases nothing is installed and the registry polls the table
instead. The new version is ``max(old + 1, now in microseconds)``, so it never repeats, even after
the stamp row was deleted.

On PostgreSQL the stamp row is thus locked only while the transaction commits, not from its first
change on: a transaction that changes several rows (an import, a data migration) cannot deadlock
against a concurrent single-row save. The bump still happens inside the committing transaction,
so the stamp is never visible before the rows it describes, and only once per transaction (the
later row triggers return at once). Triggers installed by an older release keep the older
statement-level form until ``InstallVersionTriggers`` runs again (it replaces them).

A custom LLM model (``CREATIVE_SERVICES_LLM_MODEL``) can get the triggers too, which spares the
registry from reading the whole table on each check; add to one of its app's migrations::

    from creative_services.contrib.django.triggers import InstallVersionTriggers

    class Migration(migrations.Migration):
        dependencies = [("myapp", "0007_..."), ("creative_services", "0001_initial")]
        operations = [InstallVersionTriggers("myapp.Llms")]

Running the operation again in a later migration upgrades triggers installed by an older release.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation

__all__ = [
    "STAMP_TABLE",
    "InstallVersionTriggers",
    "UpgradeVersionTriggers",
    "has_triggers",
    "install_sql",
    "remove_sql",
    "statement_level_sql",
]

STAMP_TABLE = "creative_services_registryversion"
_SQLITE_EVENTS = (("ins", "INSERT"), ("upd", "UPDATE"), ("del", "DELETE"))
_PG_FLAG = "creative_services.version_bumped"


def _name(connection: Any, table: str, suffix: str) -> str:
    from django.db.backends.utils import truncate_name

    return str(truncate_name(f"{table}_cs_{suffix}", connection.ops.max_name_length()))


def _pg_function(connection: Any, table: str) -> str:
    q = connection.ops.quote_name
    stamp, func = q(STAMP_TABLE), q(_name(connection, table, "bump"))
    # Once per transaction: the first call records the transaction id in a transaction-local
    # setting and the later ones (one per changed row, at commit) return at once.
    return f"""CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{_PG_FLAG}', true) IS NOT DISTINCT FROM txid_current()::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('{_PG_FLAG}', txid_current()::text, true);
    INSERT INTO {stamp} (id, version)
    VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
    ON CONFLICT (id) DO UPDATE SET version = GREATEST({stamp}.version + 1, EXCLUDED.version);
    RETURN NULL;
END $$"""  # noqa: S608


def install_sql(connection: Any, table: str) -> list[str]:
    """Statements that install the triggers on ``table`` (empty for unsupported databases).

    Idempotent: on PostgreSQL they also replace the older statement-level form.
    """
    # Only quoted identifiers (from model metadata) are interpolated: no values.
    q = connection.ops.quote_name
    stamp, target = q(STAMP_TABLE), q(table)
    if connection.vendor == "postgresql":
        func = q(_name(connection, table, "bump"))
        trigger = q(_name(connection, table, "version"))
        truncate = q(_name(connection, table, "truncate"))
        return [
            _pg_function(connection, table),
            f"DROP TRIGGER IF EXISTS {trigger} ON {target}",
            f"CREATE CONSTRAINT TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {target} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {func}()",
            f"DROP TRIGGER IF EXISTS {truncate} ON {target}",
            f"CREATE TRIGGER {truncate} AFTER TRUNCATE ON {target} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {func}()",
        ]
    if connection.vendor == "sqlite":
        now = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
        return [
            f"CREATE TRIGGER IF NOT EXISTS {q(_name(connection, table, suffix))} "  # noqa: S608
            f"AFTER {event} ON {target} BEGIN "
            f"INSERT OR IGNORE INTO {stamp} (id, version) VALUES (1, 0); "
            f"UPDATE {stamp} SET version = max(version + 1, {now}) WHERE id = 1; END"
            for suffix, event in _SQLITE_EVENTS
        ]
    return []


def statement_level_sql(connection: Any, table: str) -> list[str]:
    """The older PostgreSQL form (one statement-level trigger), for reversing migration 0003.

    It holds the stamp row's lock from the first change to commit, so a multi-statement
    transaction on the table can deadlock against a concurrent save; other databases: as
    :func:`install_sql`.
    """
    if connection.vendor != "postgresql":
        return install_sql(connection, table)
    q = connection.ops.quote_name
    target, func = q(table), q(_name(connection, table, "bump"))
    trigger = q(_name(connection, table, "version"))
    return [
        _pg_function(connection, table),
        f"DROP TRIGGER IF EXISTS {q(_name(connection, table, 'truncate'))} ON {target}",
        f"DROP TRIGGER IF EXISTS {trigger} ON {target}",
        f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {target} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {func}()",
    ]


def remove_sql(connection: Any, table: str) -> list[str]:
    """Statements that remove what :func:`install_sql` installed."""
    q = connection.ops.quote_name
    if connection.vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {q(_name(connection, table, 'version'))} ON {q(table)}",
            f"DROP TRIGGER IF EXISTS {q(_name(connection, table, 'truncate'))} ON {q(table)}",
            f"DROP FUNCTION IF EXISTS {q(_name(connection, table, 'bump'))}()",
        ]
    if connection.vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {q(_name(connection, table, suffix))}"
            for suffix, _ in _SQLITE_EVENTS
        ]
    return []


def has_triggers(connection: Any, table: str) -> bool:
    """Whether the version triggers are installed on ``table`` (one small query)."""
    if connection.vendor == "postgresql":
        sql, name = (
            "SELECT 1 FROM pg_trigger WHERE tgname = %s",
            _name(connection, table, "version"),
        )
    elif connection.vendor == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = %s"
        name = _name(connection, table, "ins")
    else:
        return False
    with connection.cursor() as cursor:
        cursor.execute(sql, [name])
        return cursor.fetchone() is not None


class InstallVersionTriggers(Operation):
    """Migration operation: install the version triggers on the table of ``model`` ("app.Model").

    Changes no model state, so ``makemigrations`` never sees it; reversible.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model: str) -> None:
        self.model = model

    def state_forwards(self, app_label: str, state: Any) -> None:
        """Nothing: triggers are not part of the model state."""

    def _run(self, schema_editor: Any, state: Any, make: Any) -> None:
        model = state.apps.get_model(self.model)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            for sql in make(schema_editor.connection, model._meta.db_table):
                schema_editor.execute(sql, params=None)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Install the triggers."""
        self._run(schema_editor, to_state, install_sql)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Remove the triggers."""
        self._run(schema_editor, from_state, remove_sql)

    def describe(self) -> str:
        """One line for ``migrate``'s output."""
        return f"Install registry version triggers on {self.model}"


class UpgradeVersionTriggers(InstallVersionTriggers):
    """Migration operation: replace older triggers on ``model`` with the current form.

    Forwards as :class:`InstallVersionTriggers`; backwards restores the statement-level form.
    """

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Restore the older statement-level trigger."""
        self._run(schema_editor, from_state, statement_level_sql)

    def describe(self) -> str:
        """One line for ``migrate``'s output."""
        return f"Upgrade registry version triggers on {self.model}"
