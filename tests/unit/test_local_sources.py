"""Which directories file:// sources may read: the policy, and the executor's listing and reads honouring it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.executor.discover import LocalSourceRefused, SourceAccess, SourceLimits, file_heads, list_source
from services.shared.local_sources import LocalSourcePolicy


def test_any_directory_but_the_home_and_what_contains_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    policy = LocalSourcePolicy.from_setting("*", home)
    assert policy.refusal(tmp_path / "landing", resolve_links=False) is None
    assert "home directory" in (policy.refusal(home, resolve_links=False) or "")
    assert "home directory" in (policy.refusal(home / "logs", resolve_links=False) or "")
    # A source above the home lists everything below it, the home included.
    assert "home directory" in (policy.refusal(tmp_path, resolve_links=False) or "")
    # .. segments cannot walk into it either.
    assert "home directory" in (policy.refusal(tmp_path / "landing" / ".." / "home", resolve_links=False) or "")


def test_named_roots_limit_sources_to_them(tmp_path: Path) -> None:
    policy = LocalSourcePolicy.from_setting(f"{tmp_path}/a, {tmp_path}/b", tmp_path / "home")
    assert policy.refusal(tmp_path / "a", resolve_links=False) is None
    assert policy.refusal(tmp_path / "b" / "deep", resolve_links=False) is None
    refusal = policy.refusal(tmp_path / "ab", resolve_links=False) or ""
    assert "outside the directories local sources may read (AUTOLOADER_LOCAL_SOURCE_ROOTS)" in refusal


def test_an_empty_setting_turns_local_sources_off(tmp_path: Path) -> None:
    policy = LocalSourcePolicy.from_setting("", tmp_path / "home")
    assert "turned off" in (policy.refusal(tmp_path / "a", resolve_links=False) or "")


def test_a_relative_root_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AUTOLOADER_LOCAL_SOURCE_ROOTS: 'landing' is not an absolute directory"):
        LocalSourcePolicy.from_setting("landing", tmp_path)


def test_a_link_into_the_home_is_refused_once_links_are_followed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    link = tmp_path / "innocent"
    link.symlink_to(home)
    policy = LocalSourcePolicy.from_setting("*", home)
    assert policy.refusal(link, resolve_links=False) is None  # the path alone looks harmless
    assert "home directory" in (policy.refusal(link, resolve_links=True) or "")


def test_the_executor_lists_nothing_from_a_refused_directory_and_no_file_behind_a_link(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "admin-token").write_text("alk_secret")
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_text("id\n1\n")
    access = SourceAccess(limits=SourceLimits(local_sources=LocalSourcePolicy.from_setting("*", home)))

    assert [f.key for f in list_source(landing.as_uri() + "/", "", access)] == ["a.csv"]
    with pytest.raises(LocalSourceRefused, match="home directory"):
        list(list_source(home.as_uri() + "/", "", access))

    (landing / "token.csv").symlink_to(home / "admin-token")
    with pytest.raises(LocalSourceRefused, match="home directory"):
        list(list_source(landing.as_uri() + "/", "", access))
    with pytest.raises(LocalSourceRefused):
        file_heads(landing.as_uri() + "/", ["token.csv"], access)
