"""Include/exclude globs and the tar member safety checks of restore-files."""

import tarfile

import pytest

from backup_operator.runner.extract import member_problem
from backup_operator.runner.selection import Selection, normalize


def test_patterns_are_normalized() -> None:
    assert normalize("./cache/") == "cache"
    assert normalize("*.log") == "*.log"


def test_star_crosses_directories() -> None:
    sel = Selection.of((), ("*.log",))
    assert sel.excluded("x.log")
    assert sel.excluded("a/b/x.log")
    assert not sel.excluded("a/b/x.txt")


def test_include_applies_to_everything_under_a_matching_directory() -> None:
    sel = Selection.of(("data",), ())
    assert sel.included("data", parent_included=False)
    assert sel.included("data/deep/file", parent_included=True)
    assert not sel.included("other", parent_included=False)


def test_no_include_means_everything() -> None:
    assert Selection.of((), ()).included("anything", parent_included=False)


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("a/b.txt"),
        _member("dir", tarfile.DIRTYPE),
        _member("a/link", tarfile.SYMTYPE, "../b"),
        _member("a/b/link", tarfile.SYMTYPE, "../../c"),
        _member("a/hard", tarfile.LNKTYPE, "a/b.txt"),
    ],
)
def test_safe_members_pass(member: tarfile.TarInfo) -> None:
    assert member_problem(member) is None


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_member("/etc/passwd"), "absolute"),
        (_member("a/../../etc/passwd"), ".."),
        (_member("dev", tarfile.CHRTYPE), "device"),
        (_member("blk", tarfile.BLKTYPE), "device"),
        (_member("pipe", tarfile.FIFOTYPE), "fifo"),
        (_member("a/link", tarfile.SYMTYPE, "../../outside"), "outside"),
        (_member("link", tarfile.SYMTYPE, "/etc/shadow"), "absolute"),
        (_member("hard", tarfile.LNKTYPE, "../x"), "outside"),
        (_member("hard", tarfile.LNKTYPE, "/etc/passwd"), "absolute"),
    ],
)
def test_unsafe_members_are_refused(member: tarfile.TarInfo, why: str) -> None:
    problem = member_problem(member)
    assert problem is not None
    assert why in problem
