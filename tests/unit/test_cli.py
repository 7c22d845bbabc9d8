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
