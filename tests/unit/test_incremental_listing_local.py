"""A local directory listed after a key: the keys S3's StartAfter would return, and no others."""

from __future__ import annotations

from pathlib import Path

from services.executor.discover import list_local


def keys(root: Path, start_after: str | None, pattern: str = "") -> list[str]:
    return sorted(entry.key for entry in list_local(root.as_uri() + "/", pattern, start_after))


def test_only_keys_after_start_after_are_listed_at_any_depth(tmp_path: Path) -> None:
    for key in ("a.csv", "b/1.csv", "b/2.csv", "b.csv", "c/x/1.csv", "c/y.csv", "d.csv", "_hidden/9.csv"):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text("id\n1\n")
    everything = keys(tmp_path, None)
    assert everything == ["a.csv", "b.csv", "b/1.csv", "b/2.csv", "c/x/1.csv", "c/y.csv", "d.csv"]
    for start_after in ["", "a.csv", "b/1.csv", "b.csv", "b/", "c", "c/x/1.csv", "d.csv", "z"]:
        assert keys(tmp_path, start_after) == [k for k in everything if k > start_after], start_after
    assert keys(tmp_path, "b/1.csv", "**/*.csv") == ["b/2.csv", "c/x/1.csv", "c/y.csv", "d.csv"]


def test_directories_are_entered_only_where_keys_can_sort_after_start_after(tmp_path: Path) -> None:
    # '-' sorts before '/', so the directory "b" holds keys after "b-1.csv" although "b" < "b-1.csv".
    for key in ("b-1.csv", "b/x.csv", "b-2/y.csv", "a/deep/z.csv", "c.csv"):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text("id\n1\n")
    (tmp_path / "link").symlink_to(tmp_path / "b", target_is_directory=True)  # not entered, as os.walk does
    everything = keys(tmp_path, None)
    assert everything == ["a/deep/z.csv", "b-1.csv", "b-2/y.csv", "b/x.csv", "c.csv"]
    for start_after in ("b-1.csv", "b", "b-2", "b-2/y.csv", "a/deep", "a/deep/z.csv", "a/", "b/x.csv"):
        assert keys(tmp_path, start_after) == [k for k in everything if k > start_after], start_after
