import click
from click.testing import CliRunner

from pipeline.cli import main

REQUIRED = {"demo", "ingest", "check", "build", "run", "publish", "query", "status", "sources"}


def test_required_commands_exist() -> None:
    assert set(main.commands) >= REQUIRED


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for name, command in main.commands.items():
        assert isinstance(command, click.Command)
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example:" in result.output and "lakehouse " in result.output, name


def test_user_errors_are_one_line_and_exit_non_zero(tmp_path) -> None:
    result = CliRunner().invoke(main, ["--project", str(tmp_path / "missing.yml"), "status"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
