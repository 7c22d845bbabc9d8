from pathlib import Path

import pytest

from lake import LakeConfigError, LakeSettings, S3Settings

ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
    "AWS_REGION": "eu-west-1",
}


def test_s3_settings_from_standard_variables() -> None:
    s3 = S3Settings.from_env(ENV)
    assert s3.endpoint_url == "http://127.0.0.1:9000"
    assert s3.endpoint_host == "127.0.0.1:9000"
    assert s3.region == "eu-west-1"
    assert s3.use_ssl is False
    assert s3.url_style == "path"


def test_aws_defaults_without_endpoint() -> None:
    s3 = S3Settings.from_env({"AWS_DEFAULT_REGION": "us-west-2"})
    assert (s3.endpoint_host, s3.url_style, s3.use_ssl, s3.region) == (
        "s3.amazonaws.com",
        "vhost",
        True,
        "us-west-2",
    )


def test_every_tool_gets_the_same_settings() -> None:
    s3 = S3Settings.from_env(ENV)
    boto = s3.boto3_kwargs()
    assert boto["endpoint_url"] == "http://127.0.0.1:9000"
    assert boto["aws_secret_access_key"] == "s3cr3t-value"
    sql = s3.duckdb_secret_sql()
    assert "TEMPORARY SECRET" in sql and "ENDPOINT '127.0.0.1:9000'" in sql
    assert "USE_SSL false" in sql and "URL_STYLE 'path'" in sql
    assert s3.duckdb_config()["s3_endpoint"] == "127.0.0.1:9000"
    assert s3.dbt_env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    fs = s3.pyarrow_fs()
    assert fs.region == "eu-west-1"


def test_secrets_are_not_in_repr() -> None:
    s3 = S3Settings.from_env(ENV)
    assert "s3cr3t" not in repr(s3)
    assert "s3cr3t" not in repr(LakeSettings("s3://b/p", s3))


def test_bad_endpoint_is_named() -> None:
    with pytest.raises(LakeConfigError, match="AWS_ENDPOINT_URL"):
        S3Settings.from_env({"AWS_ENDPOINT_URL": "127.0.0.1:9000"})


def test_env_var_wins_over_config_then_default(tmp_path: Path) -> None:
    env = {"LAKEHOUSE_LAKE_URL": "s3://bucket/pre/fix/", **ENV}
    s = LakeSettings.resolve("elsewhere", tmp_path, env)
    assert (s.url, s.bucket, s.prefix, s.is_s3) == (
        "s3://bucket/pre/fix",
        "bucket",
        "pre/fix",
        True,
    )
    s = LakeSettings.resolve("elsewhere", tmp_path, {})
    assert s.url == str(tmp_path / "elsewhere") and not s.is_s3
    assert LakeSettings.resolve(None, tmp_path, {}).url == str(tmp_path / "data" / "lake")


@pytest.mark.parametrize("url", ["s3://", "gs://bucket/x", "http://host/x"])
def test_bad_lake_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(LakeConfigError):
        LakeSettings.resolve(url, tmp_path, {})


def test_extensions_are_checked_once_and_again_when_a_file_changes(tmp_path: Path) -> None:
    """DuckDB's signature check runs once per file (then every LOAD skips it); a file
    changed since is checked again, and one that fails it is removed, not loaded."""
    import duckdb

    from lake import extensions

    target = extensions.install(tmp_path / "ext")
    assert extensions.verified(target)
    file = next((target / f"v{duckdb.__version__}").glob("*/ducklake.duckdb_extension"))
    with file.open("r+b") as f:  # one byte of the code changed, the file's end intact
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert not extensions.verified(target)  # so connections check signatures again
    extensions._install.cache_clear()  # (as the next process)
    with pytest.raises(RuntimeError, match="failed its signature check"):
        extensions.install(target)
    assert not file.exists()
    extensions._install.cache_clear()
    assert extensions.verified(extensions.install(target))  # copied again from its wheel
