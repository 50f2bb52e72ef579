"""Configuration loading (TOML + M3SYNC_* environment), secrets, and redaction of secrets and
buyer personal data in values and logs."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import pytest

from connectors.redact import MASK, RedactingFilter, install_redaction, redact
from connectors.settings import (
    ConfigurationError,
    Secret,
    load_settings,
    resolve_home,
)

FULL_TOML = """\
[m3]
ionapi = "creds/m3.ionapi"
profile = "cloudsuite"
cono = 100
divi = "AAA"
tenant = "ACME_PRD"

[amazon]
refresh_token = "Atzr|IwEBrefresh"
lwa_app_id = "amzn1.application-oa2-client.abc"
lwa_client_secret = "lwa-client-secret-value"
marketplaces = ["ATVPDKIKX0DER"]
seller_id = "A1SELLER"
"""


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "creds").mkdir(parents=True)
    (home / "creds" / "m3.ionapi").write_text("{}", encoding="utf-8")
    return home


class RecordingResolver:
    """Stands in for Prefect's Secret block loader and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, name: str) -> str:
        self.calls.append(name)
        return f"value-of-{name}"


# -- loading --------------------------------------------------------------------------


def test_settings_from_toml(home: Path) -> None:
    write_config(home, FULL_TOML)
    settings = load_settings(home, env={})
    m3 = settings.require_m3()
    assert m3.ionapi == home / "creds" / "m3.ionapi"
    assert m3.auth_mode == "ionapi"
    assert (m3.profile, m3.cono, m3.divi, m3.tenant) == ("cloudsuite", "100", "AAA", "ACME_PRD")
    amazon = settings.require_amazon()
    assert amazon.refresh_token.reveal() == "Atzr|IwEBrefresh"
    assert amazon.lwa_client_secret.reveal() == "lwa-client-secret-value"
    assert amazon.lwa_app_id == "amzn1.application-oa2-client.abc"
    assert amazon.marketplaces == ("ATVPDKIKX0DER",)
    assert amazon.endpoint == "https://sellingpartnerapi-na.amazon.com"  # US marketplace -> NA
    assert amazon.token_url == "https://api.amazon.com/auth/o2/token"
    assert amazon.seller_id == "A1SELLER"
    assert settings.state_url == f"sqlite:///{home / 'state.sqlite'}"
    assert settings.home == home


def test_live_m3_without_a_profile_uses_cloudsuite_and_brief_only_when_chosen(home: Path) -> None:
    without = FULL_TOML.replace('profile = "cloudsuite"\n', "")
    assert "profile" not in without
    write_config(home, without)
    assert load_settings(home, env={}).require_m3().profile == "cloudsuite"
    assert load_settings(home, env={"M3SYNC_M3_PROFILE": "brief"}).require_m3().profile == "brief"
    write_config(home, without.replace("[m3]\n", '[m3]\nprofile = "brief"\n'))
    assert load_settings(home, env={}).require_m3().profile == "brief"
    write_config(home, without.replace("[m3]\n", '[m3]\nprofile = "standard"\n'))
    with pytest.raises(ConfigurationError, match=r"\[m3\] profile .* must be one of brief, cloudsuite, got 'standard'"):
        load_settings(home, env={}, require=["m3"])


def test_environment_overrides_toml(home: Path, tmp_path: Path) -> None:
    write_config(home, FULL_TOML)
    env = {
        "M3SYNC_M3_IONAPI": "",  # empty counts as unset: the file's value stays
        "M3SYNC_M3_PROFILE": "brief",
        "M3SYNC_M3_CONO": "200",
        "M3SYNC_M3_BASE_URL": "https://m3.example.com/",
        "M3SYNC_AMAZON_REFRESH_TOKEN": "Atzr|fromenv",
        "M3SYNC_AMAZON_MARKETPLACES": "A1PA6795UKMFR9, A13V1IB3VIYZZH",
        "M3SYNC_AMAZON_ENDPOINT": "http://127.0.0.1:9999",
        "M3SYNC_AMAZON_TOKEN_URL": "http://127.0.0.1:9999/auth/o2/token",
        "M3SYNC_AMAZON_SELLER_ID": "A2OTHER",
        "M3SYNC_STATE_URL": "postgresql+psycopg://sync@db/m3sync",
    }
    settings = load_settings(home, env=env)
    m3 = settings.require_m3()
    assert m3.ionapi == home / "creds" / "m3.ionapi"
    assert (m3.profile, m3.cono, m3.base_url) == ("brief", "200", "https://m3.example.com")
    amazon = settings.require_amazon()
    assert amazon.refresh_token.reveal() == "Atzr|fromenv"
    assert amazon.marketplaces == ("A1PA6795UKMFR9", "A13V1IB3VIYZZH")
    assert amazon.endpoint == "http://127.0.0.1:9999"
    assert amazon.token_url == "http://127.0.0.1:9999/auth/o2/token"
    assert amazon.seller_id == "A2OTHER"
    assert settings.state_url == "postgresql+psycopg://sync@db/m3sync"


def test_environment_alone_configures_basic_auth_m3(tmp_path: Path) -> None:
    env = {
        "M3SYNC_M3_BASE_URL": "https://m3.local:21108",
        "M3SYNC_M3_USER": "INFORBC\\SYNC",
        "M3SYNC_M3_PASSWORD": "pw-123",
        "M3SYNC_M3_DIVI": "BBB",
    }
    m3 = load_settings(tmp_path / "nowhere", env=env, require=("m3",)).require_m3()
    assert m3.auth_mode == "basic"
    assert (m3.base_url, m3.user, m3.divi, m3.cono) == ("https://m3.local:21108", "INFORBC\\SYNC", "BBB", None)
    assert m3.password.reveal() == "pw-123"


def test_secret_blocks_are_resolved_only_when_revealed(home: Path) -> None:
    write_config(
        home,
        """\
[m3]
base_url = "https://m3.example.com"
user = "SYNC"
password = { secret_block = "m3-password" }

[amazon]
refresh_token = "prefect-secret:amazon-refresh"
lwa_app_id = "app"
lwa_client_secret = "will be overridden"
marketplaces = "A1PA6795UKMFR9"
""",
    )
    resolver = RecordingResolver()
    env = {"M3SYNC_AMAZON_LWA_CLIENT_SECRET": "prefect-secret:lwa-secret"}
    settings = load_settings(home, env=env, secret_resolver=resolver)
    m3, amazon = settings.require_m3(), settings.require_amazon()
    assert resolver.calls == []
    assert m3.password.block == "m3-password"
    assert m3.password.reveal() == "value-of-m3-password"
    assert resolver.calls == ["m3-password"]
    assert amazon.refresh_token.reveal() == "value-of-amazon-refresh"
    assert amazon.lwa_client_secret.reveal() == "value-of-lwa-secret"
    assert resolver.calls == ["m3-password", "amazon-refresh", "lwa-secret"]


def test_secrets_never_show_in_text(home: Path) -> None:
    write_config(home, FULL_TOML)
    settings = load_settings(
        home, env={"M3SYNC_M3_PASSWORD": "pw-plain-123", "M3SYNC_STATE_URL": "postgresql://sync:pw-plain-123@db/m3sync"}
    )
    assert "postgresql://sync:***@db/m3sync" in repr(settings)
    for rendering in (
        repr(settings),
        str(settings),
        f"{settings.require_amazon().refresh_token}",
        str(settings.require_m3().password),
    ):
        assert "IwEBrefresh" not in rendering
        assert "lwa-client-secret-value" not in rendering
        assert "pw-plain-123" not in rendering
    assert repr(Secret.literal("x")) == "Secret('***')"
    assert str(Secret.literal("x")) == "***"
    with pytest.raises(AttributeError):
        Secret.literal("x")._value = "y"  # type: ignore[misc]  # frozen: the point of the test


def test_secret_survives_pickling_for_worker_processes() -> None:
    secret = pickle.loads(pickle.dumps(Secret.literal("s3cret")))
    assert secret.reveal() == "s3cret"
    assert secret == Secret.literal("s3cret")


# -- what is missing or wrong ---------------------------------------------------------


def test_nothing_configured_falls_back_to_nothing(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    settings = load_settings(home, env={})
    assert settings.m3 is None and settings.amazon is None
    with pytest.raises(ConfigurationError) as missing_m3:
        settings.require_m3()
    message = str(missing_m3.value)
    assert message.startswith("M3 is not configured")
    assert f'[m3] ionapi = "path/to/file.ionapi" in {home / "config.toml"}' in message
    assert "M3SYNC_M3_IONAPI" in message and "--sandbox" in message
    with pytest.raises(ConfigurationError, match="Amazon is not configured.*M3SYNC_AMAZON_REFRESH_TOKEN"):
        settings.require_amazon()
    with pytest.raises(ConfigurationError, match="Amazon is not configured"):
        load_settings(home, env={}, require=("amazon",))


def test_partial_amazon_configuration_names_each_missing_key(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path, env={"M3SYNC_AMAZON_REFRESH_TOKEN": "Atzr|x", "M3SYNC_AMAZON_MARKETPLACES": "ATVPDKIKX0DER"}
    )
    with pytest.raises(ConfigurationError) as error:
        settings.require_amazon()
    message = str(error.value)
    assert "[amazon] lwa_app_id" in message and "M3SYNC_AMAZON_LWA_APP_ID" in message
    assert "[amazon] lwa_client_secret" in message and "M3SYNC_AMAZON_LWA_CLIENT_SECRET" in message
    assert "refresh_token" not in message
    assert "Atzr" not in message


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[m3]\nionapi = "missing.ionapi"\n', "missing.ionapi does not exist"),
        ('[m3]\nbase_url = "https://m3"\nuser = "U"\n', "M3 HTTP Basic needs password: set [m3] password"),
        ('[m3]\nbase_url = "m3.example.com"\nuser = "U"\npassword = "p"\n', "must be an http(s) URL"),
        ('[m3]\nionapi = "creds/m3.ionapi"\nprofile = "fast"\n', "must be one of brief, cloudsuite, got 'fast'"),
        ('[m3]\nionapi = "creds/m3.ionapi"\ncono = "ABC"\n', "company number"),
        ('[m3]\nionapi = "creds/m3.ionapi"\ndivi = true\n', "[m3] divi in"),
        ('[m3]\nbase_url = "https://m3"\nuser = "U"\npassword = { block = "x" }\n', 'secret_block = "NAME"'),
    ],
)
def test_bad_m3_values_are_named(home: Path, toml: str, expected: str) -> None:
    write_config(home, toml)
    settings = load_settings(home, env={})
    with pytest.raises(ConfigurationError) as error:
        settings.require_m3()
    assert expected in str(error.value)


def test_mixed_region_marketplaces_need_an_endpoint(tmp_path: Path) -> None:
    env = {
        "M3SYNC_AMAZON_REFRESH_TOKEN": "r",
        "M3SYNC_AMAZON_LWA_APP_ID": "a",
        "M3SYNC_AMAZON_LWA_CLIENT_SECRET": "s",
        "M3SYNC_AMAZON_MARKETPLACES": "ATVPDKIKX0DER,A1PA6795UKMFR9",
    }
    with pytest.raises(ConfigurationError, match="M3SYNC_AMAZON_ENDPOINT"):
        load_settings(tmp_path, env=env).require_amazon()


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[m3]\nprofile = "brief"\ncono = = 100\n')
    with pytest.raises(ConfigurationError) as error:
        load_settings(tmp_path, env={})
    assert str(path) in str(error.value)
    assert "line 3" in str(error.value)
    assert (error.value.path, error.value.line) == (path, 3)


def test_config_file_that_is_not_utf8_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[m3]\nprofile = "brief"\ndivi = "ÄÄÄ"\n'.encode("latin-1"))  # 'divi = "' is 8 bytes
    with pytest.raises(ConfigurationError) as error:
        load_settings(tmp_path, env={})
    assert str(error.value) == f"{path}:3:9: not UTF-8 text; TOML files must be saved as UTF-8"
    assert (error.value.path, error.value.line) == (path, 3)


@pytest.mark.parametrize("url", ["ftp://svc-user:PA55-word@m3host", "ftp://svc-user:PA55/word@m3host:21108"])
def test_urls_in_errors_never_show_their_password(tmp_path: Path, url: str) -> None:
    write_config(tmp_path, f'[m3]\nbase_url = "{url}"\nuser = "U"\npassword = "p"\n')
    env_only = {"M3SYNC_M3_BASE_URL": url, "M3SYNC_M3_USER": "U", "M3SYNC_M3_PASSWORD": "p"}
    for home, env in ((tmp_path, {}), (tmp_path / "elsewhere", env_only)):
        with pytest.raises(ConfigurationError) as error:
            load_settings(home, env=env).require_m3()
        assert "must be an http(s) URL" in str(error.value)
        assert "PA55" not in str(error.value) and "svc-user" not in str(error.value)
        assert "'ftp://***@m3host" in str(error.value)


def test_state_url_without_its_driver_says_what_to_install_without_the_password(tmp_path: Path) -> None:
    import importlib.util

    from connectors.state import StateStore
    from flows.connections import checked_settings

    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed here: no missing driver to report")
    url = "postgresql+psycopg://sync:S3cret-pw@db:5432/m3sync"
    write_config(tmp_path, f'[state]\nurl = "{url}"\n')
    for env in ({}, {"M3SYNC_STATE_URL": url}):
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            with pytest.raises(ConfigurationError) as error:
                checked_settings(tmp_path, sandbox=True, need_m3=False, need_amazon=False)
        message = str(error.value)
        assert "needs the psycopg database driver" in message and "pip install 'psycopg[binary]'" in message
        assert ("M3SYNC_STATE_URL" if env else "[state] url") in message
        assert "S3cret" not in message
    with pytest.raises(ConfigurationError, match="needs the psycopg database driver") as error:
        StateStore(url)
    assert "S3cret" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"ti": "T", "cs": "c\xe9-secret"}'.encode("latin-1"), ":1:21: not UTF-8 text"),
        (b'{"ti": "T", "cs": "secret",', r"is not valid JSON \(line 1, column 28\)"),
        (b'{"ti": "T", "cs": "secret"}', "lacks"),
    ],
)
def test_an_unusable_ionapi_file_is_a_configuration_error(tmp_path: Path, content: bytes, expected: str) -> None:
    from flows.connections import checked_settings

    (tmp_path / "m3.ionapi").write_bytes(content)
    write_config(tmp_path, '[m3]\nionapi = "m3.ionapi"\n')
    with pytest.raises(ConfigurationError, match=expected) as error:
        checked_settings(tmp_path, sandbox=False, need_m3=True, need_amazon=False)
    assert "m3.ionapi" in str(error.value) and "secret" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "is not a database URL"),
        ("nosuchdb://u:S3cret-pw@h/x", "names a database SQLAlchemy does not know"),
    ],
)
def test_bad_state_urls_are_one_line_without_the_password(tmp_path: Path, url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as error:
        load_settings(tmp_path, env={"M3SYNC_STATE_URL": url})
    assert "S3cret" not in str(error.value) and "M3SYNC_STATE_URL" in str(error.value)


def test_unknown_keys_and_sections_are_rejected(tmp_path: Path) -> None:
    write_config(tmp_path, '[m3]\npasword = "x"\n')
    with pytest.raises(ConfigurationError, match=r"unknown key 'pasword' in \[m3\]"):
        load_settings(tmp_path, env={})
    write_config(tmp_path, '[amazn]\nrefresh_token = "x"\n')
    with pytest.raises(ConfigurationError, match=r"unknown section \[amazn\]"):
        load_settings(tmp_path, env={})


def test_not_settled_after_days_from_the_settlement_section(tmp_path: Path) -> None:
    assert load_settings(tmp_path, env={}).settlement.not_settled_after_days is None  # the workbook's 30
    write_config(tmp_path, "[settlement]\nnot_settled_after_days = 45\n")
    assert load_settings(tmp_path, env={}).settlement.not_settled_after_days == 45
    env = {"M3SYNC_SETTLEMENT_NOT_SETTLED_AFTER_DAYS": "60"}
    assert load_settings(tmp_path, env=env).settlement.not_settled_after_days == 60
    for bad in ("0", "-3", "30.5", '"soon"'):
        write_config(tmp_path, f"[settlement]\nnot_settled_after_days = {bad}\n")
        with pytest.raises(
            ConfigurationError,
            match=r"\[settlement\] not_settled_after_days in .*config.toml must be a positive number",
        ):
            load_settings(tmp_path, env={})


def test_resolve_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_home("/srv/sync", env={"M3SYNC_HOME": "/env/home"}) == Path("/srv/sync")
    assert resolve_home(None, env={"M3SYNC_HOME": "/env/home"}) == Path("/env/home")
    assert resolve_home(None, env={}) == tmp_path / ".m3sync"


# -- redaction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "secret",
        "password",
        "sask",
        "saak",
        "cs",
        "refresh_token",
        "access_token",
        "Authorization",
        "x-amz-access-token",
        "client_secret",
        "lwa_client_secret",
        "M3_PASSWORD",
        "apiKey",
    ],
)
def test_secret_keys_are_masked(key: str) -> None:
    assert redact({key: "value-1", "keep": "visible"}) == {key: MASK, "keep": "visible"}


@pytest.mark.parametrize(
    "key",
    [
        "BuyerEmail",
        "BuyerName",
        "Name",
        "AddressLine1",
        "AddressLine2",
        "AddressLine3",
        "Phone",
        "PostalCode",
        "email",
        "buyer_county",
        "CUNM",
        "CUA1",
        "PHNO",
        "MAIL",
    ],
)
def test_personal_data_keys_are_masked(key: str) -> None:
    assert redact({key: "Jane", "AmazonOrderId": "112-1"}) == {key: MASK, "AmazonOrderId": "112-1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token Atza|IwEBabc123 expired", "token Atza|*** expired"),
        ("refresh with Atzr|IwEBxyz", "refresh with Atzr|***"),
        ("sent Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "sent Bearer ***"),
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic ***"),
        ("order for jane.doe+x@marketplace.amazon.com shipped", "order for *** shipped"),
        (
            "grant_type=password&username=U&password=hunter2&client_secret=abc",
            "grant_type=password&username=U&password=***&client_secret=***",
        ),
        (
            "connecting to postgresql+psycopg://sync:pa55word@db:5432/m3sync",
            "connecting to postgresql+psycopg://sync:***@db:5432/m3sync",
        ),
        ("see https://example.com/a:b@c", "see https://example.com/a:b@c"),
        ('{"access_token": "abc123", "expires_in": 3600}', '{"access_token": "***", "expires_in": 3600}'),
        ("Basic mode selected; GetBasicData ok", "Basic mode selected; GetBasicData ok"),
        (
            "GET /m3api-rest/v2/execute/CRS610MI/Add?CUTM=AMZTMPL&CUNM=Jane+Doe&CUA1=1%20Main&PONO=10115 200",
            "GET /m3api-rest/v2/execute/CRS610MI/Add?CUTM=AMZTMPL&CUNM=***&CUA1=***&PONO=*** 200",
        ),
        (
            '{"Name": "Jane \\"JD\\" Doe", "City": "Berlin", "PostalCode": "10115"}',
            '{"Name": "***", "City": "Berlin", "PostalCode": "***"}',
        ),
    ],
)
def test_inline_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_nested_values_are_walked_without_mutating_the_input() -> None:
    original = {
        "orders": [{"AmazonOrderId": "112-1", "BuyerInfo": {"BuyerEmail": "a@b.co"}, "OrderTotal": {"Amount": "9.99"}}],
        "NextToken": "page-2",
        "pair": ("Atza|tok", 5),
        "password": None,
        "MIRecord": [{"Name": "CUNM", "Value": "Jane Doe"}, {"Name": "CUNO", "Value": "AMZUS"}],
    }
    masked = redact(original)
    assert masked == {
        "orders": [{"AmazonOrderId": "112-1", "BuyerInfo": MASK, "OrderTotal": {"Amount": "9.99"}}],
        "NextToken": "page-2",
        "pair": ("Atza|***", 5),
        "password": None,
        "MIRecord": [{"Name": "CUNM", "Value": MASK}, {"Name": "CUNO", "Value": "AMZUS"}],
    }
    assert original["orders"][0]["BuyerInfo"] == {"BuyerEmail": "a@b.co"}


@pytest.fixture
def captured_logger():
    logger = logging.getLogger("m3sync_test_redaction")
    child = logging.getLogger("m3sync_test_redaction.child")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, child, handler, stream
    logger.removeHandler(handler)
    for target in (logger, child):
        for installed in [f for f in target.filters if isinstance(f, RedactingFilter)]:
            target.removeFilter(installed)


def test_logging_filter_masks_messages_args_and_tracebacks(captured_logger) -> None:
    logger, child, handler, stream = captured_logger
    install_redaction(("m3sync_test_redaction",))
    install_redaction(("m3sync_test_redaction",))  # idempotent
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1

    logger.info("token %s for %s", "Atza|IwEBsecret", "jane@example.com")
    logger.info({"refresh_token": "Atzr|x", "order": "112-1"})
    logger.info("client %(client_secret)s", {"client_secret": "abc"})
    child.warning("child says Bearer abcdefghijklmnop")  # propagates to the parent's handler
    try:
        raise RuntimeError("LWA refused refresh_token=Atzr|inexception")
    except RuntimeError:
        logger.exception("call failed")

    output = stream.getvalue()
    for leaked in ("IwEBsecret", "jane@example.com", "Atzr|x", "abcdefghijklmnop", "inexception", "client abc"):
        assert leaked not in output
    lines = output.splitlines()
    assert lines[0] == "m3sync_test_redaction token Atza|*** for ***"
    assert lines[1] == "m3sync_test_redaction {'refresh_token': '***', 'order': '112-1'}"
    assert lines[2] == "m3sync_test_redaction client ***"
    assert lines[3] == "m3sync_test_redaction.child child says Bearer ***"
    assert "RuntimeError: LWA refused refresh_token=***" in output


def test_filter_keeps_records_with_bad_format_strings() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items Atza|tok", ("many",), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "%d items Atza|***"
