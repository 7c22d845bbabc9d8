import click
from click.testing import CliRunner

from pipeline.cli import main

REQUIRED = {"demo", "ingest", "check", "build", "run", "publish", "query", "status", "sources",
            "quarantine", "maintain"}  # fmt: skip


def test_required_commands_exist() -> None:
    assert set(main.commands) >= REQUIRED


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's path, those inside groups too (`quarantine release`)."""
    found = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    paths = _commands(main)
    assert ("quarantine", "release") in paths and ("expectations", "suggest") in paths
    for path in paths:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example:" in result.output and "lakehouse " in result.output, path


def test_user_errors_are_one_line_and_exit_non_zero(tmp_path) -> None:
    result = CliRunner().invoke(main, ["--project", str(tmp_path / "missing.yml"), "status"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`lakehouse --help` and a query pay for none of GX (7.5 s), dbt, pandas, pyarrow or
    Dagster: each is imported where it is used (`make bench ONLY=cli_start` times it)."""
    import subprocess
    import sys

    heavy = ["great_expectations", "dbt", "pandas", "pyarrow", "dagster", "rich", "croniter"]
    code = ("import sys, pipeline.cli, pipeline.serve, pipeline.config; "
            f"print([m for m in {heavy!r} if m in sys.modules])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert "schedule" in main.commands and "--wait" in str(
        [p.opts for p in main.commands["run"].params]
    )
