"""Credentials never leave the service: params are stripped and texts redacted."""

from pydantic import SecretStr

from coinstream.ingest_rest.redaction import public_params, redact


def test_public_params_drops_credential_params_case_insensitively() -> None:
    params = {"ids": "bitcoin", "x_cg_demo_api_key": "k1", "cmc_pro_api_key": "k2"}
    assert public_params(params, {"x_cg_demo_api_key", "CMC_PRO_API_KEY"}) == {"ids": "bitcoin"}


def test_redact_replaces_the_secret_value_anywhere_and_key_like_pairs() -> None:
    secret = SecretStr("abc123-very-secret")
    text = "GET /x failed for abc123-very-secret; api_key=other-thing"
    out = redact(text, [secret, None])
    assert "abc123-very-secret" not in out and "other-thing" not in out
    assert out.startswith("GET /x failed for ***")
