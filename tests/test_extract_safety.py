"""Extraction never writes outside the destination or creates anything dangerous (tarfile's ``data`` filter).

Hostile archives are written straight through ``ContainerWriter`` (``conftest.craft_archive``), so none of
the archiver's own checks on the way in can hide a missing check on the way out. Each hostile member must
be refused with a message naming it, the good members around it still extracted, and the exit code 1.
"""
from __future__ import annotations

import os
import stat

import pytest

from lmar.cli import main as lmar_main
from lmar.errors import UnsafeMemberError
from lmar.extract import safe_relpath

from conftest import assert_clean, craft_archive, dir_member, file_member, link_member, run_lmar


def extract(capsys, archive, dest, *extra):
    """Run ``lmar extract`` in this process; returns (exit code, stderr)."""
    rc = lmar_main(["extract", "-q", str(archive), "-C", str(dest), *map(str, extra)])
    return rc, capsys.readouterr().err


def sandwich(tmp_path, *hostile):
    """An archive with good members before and after the hostile ones."""
    arc = tmp_path / "hostile.lmar"
    craft_archive(arc, [file_member("before.txt", b"before"), *hostile, file_member("after.txt", b"after")])
    return arc


def assert_refused_rest_extracted(rc, err, dest, names):
    assert rc == 1, err
    for name in names:
        assert name in err, (name, err)
    assert err.count("lmar: ") >= len(names)
    assert "Traceback" not in err and "internal error" not in err
    assert (dest / "before.txt").read_bytes() == b"before"
    assert (dest / "after.txt").read_bytes() == b"after"


def listing(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs}


@pytest.fixture
def area(tmp_path):
    """A destination inside a sandbox; ``outside`` is a sibling that must never change."""
    dest = tmp_path / "sandbox" / "dest"
    outside = tmp_path / "sandbox" / "outside"
    outside.mkdir(parents=True)
    (outside / "keep.txt").write_bytes(b"precious")
    return dest, outside


def _outside_unchanged(outside):
    assert listing(outside) == {"keep.txt"}
    assert (outside / "keep.txt").read_bytes() == b"precious"


@pytest.mark.parametrize("name", ["/abs/evil.txt", "../evil.txt", "a/../../evil.txt", "..", "a/..",
                                  "./../evil.txt", "a/b/../../../evil.txt"])
def test_absolute_and_dotdot_paths_refused(capsys, tmp_path, area, name):
    dest, outside = area
    arc = sandwich(tmp_path, file_member(name, b"evil"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, [name])
    assert listing(dest) == {"before.txt", "after.txt"}
    assert not (tmp_path / "sandbox" / "evil.txt").exists()
    _outside_unchanged(outside)


def test_absolute_path_really_absolute(capsys, tmp_path, area):
    """An absolute member naming a real location must not be created there."""
    dest, outside = area
    target = outside / "abs.txt"
    arc = sandwich(tmp_path, file_member(str(target), b"evil"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, [str(target)])
    _outside_unchanged(outside)


@pytest.mark.parametrize("name, target", [
    ("abs", "/etc/passwd"),
    ("abs_dir", "/"),
    ("up", ".."),
    ("up2", "../outside/keep.txt"),
    ("d/up", "../../outside"),
    ("d/e/up", "../../.."),
    ("sneaky", "d/../../outside"),
])
def test_symlinks_pointing_outside_refused(capsys, tmp_path, area, name, target):
    dest, outside = area
    arc = sandwich(tmp_path, link_member(name, target))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, [name])
    assert not os.path.lexists(dest / name)
    _outside_unchanged(outside)


@pytest.mark.parametrize("links", [
    [("l1", "."), ("l2", "l1/..")],  # lexically '.', really the destination's parent
    [("l2", "l1/.."), ("l1", ".")],  # the same with the helper link created afterwards
    [("l1", "."), ("l3", "l1/l1/../outside/keep.txt")],
    [("d/l1", ".."), ("d/l4", "l1/../../outside")],
])
def test_symlink_chains_escaping_through_other_links_refused(capsys, tmp_path, area, links):
    """Normalising a target lexically ('a/..' -> '') is wrong when 'a' is a symlink: the OS follows it."""
    dest, outside = area
    arc = sandwich(tmp_path, *[link_member(n, t) for n, t in links])
    rc, err = extract(capsys, arc, dest)
    assert rc == 1, err
    real_dest = os.path.realpath(dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                real = os.path.realpath(full)
                assert real == real_dest or real.startswith(real_dest + os.sep), (full, os.readlink(full), real)
    _outside_unchanged(outside)


def test_existing_symlink_makes_a_new_link_escape_refused(capsys, tmp_path, area):
    """A symlink already in the destination that points outside: a new link through it is refused too."""
    dest, outside = area
    dest.mkdir(parents=True)
    os.symlink(outside, dest / "door")
    arc = sandwich(tmp_path, link_member("via", "door/keep.txt"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["via"])
    assert not os.path.lexists(dest / "via")


def test_symlinks_inside_are_kept(capsys, tmp_path, area):
    """The filter is not a blanket ban: links that stay inside (or dangle inside) are extracted."""
    dest, outside = area
    arc = sandwich(tmp_path, dir_member("d"), file_member("d/f", b"x"), link_member("d/l", "f"),
                   link_member("d/up", "../before.txt"), link_member("dangling", "nowhere"),
                   link_member("h", "d/f", kind="hardlink"))
    rc, err = extract(capsys, arc, dest)
    assert rc == 0, err
    assert os.readlink(dest / "d/l") == "f" and (dest / "d/l").read_bytes() == b"x"
    assert (dest / "d/up").read_bytes() == b"before"
    assert os.readlink(dest / "dangling") == "nowhere"
    assert os.stat(dest / "h").st_ino == os.stat(dest / "d/f").st_ino


@pytest.mark.parametrize("target", ["../outside/keep.txt", "/etc/passwd", "a/../../outside/keep.txt",
                                    "never-extracted"])
def test_hardlinks_outside_or_to_nothing_refused(capsys, tmp_path, area, target):
    dest, outside = area
    arc = sandwich(tmp_path, link_member("hl", target, kind="hardlink"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["hl"])
    assert not os.path.lexists(dest / "hl")
    _outside_unchanged(outside)
    assert os.stat(outside / "keep.txt").st_nlink == 1


def test_hardlink_through_symlinked_directory_refused(capsys, tmp_path, area):
    """A hard link whose target path crosses a symlink in the destination could reach any file."""
    dest, outside = area
    dest.mkdir(parents=True)
    os.symlink(outside, dest / "door")
    arc = sandwich(tmp_path, link_member("hl", "door/keep.txt", kind="hardlink"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["hl"])
    assert not os.path.lexists(dest / "hl")
    assert os.stat(outside / "keep.txt").st_nlink == 1


def test_hardlink_to_a_symlink_refused(capsys, tmp_path, area):
    dest, outside = area
    arc = sandwich(tmp_path, link_member("s", "before.txt"), link_member("hl", "s", kind="hardlink"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["hl"])


def test_writing_through_existing_symlink_refused(capsys, tmp_path, area):
    """A symlink already in the destination must not be followed, even with --overwrite."""
    dest, outside = area
    dest.mkdir(parents=True)
    os.symlink(outside, dest / "door")
    arc = sandwich(tmp_path, file_member("door/keep.txt", b"clobbered"), file_member("door/new.txt", b"new"),
                   dir_member("door/sub"), link_member("door/l", "x"))
    for extra in ((), ("--overwrite",)):
        rc, err = extract(capsys, arc, dest, *extra)
        assert rc == 1
        for name in ("door/keep.txt", "door/new.txt", "door/sub", "door/l"):
            assert name in err
        _outside_unchanged(outside)


def test_writing_through_symlink_from_same_archive_refused(capsys, tmp_path, area):
    """The classic two-step attack: a harmless-looking link, then a member written through it."""
    dest, outside = area
    arc = sandwich(tmp_path, dir_member("d"), link_member("l", "d"), file_member("l/f", b"via link"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["l/f"])
    assert listing(dest / "d") == set()


def test_directory_member_never_chmods_through_an_existing_symlink(capsys, tmp_path, area):
    """A dir member named like a symlink in the destination: refused, or with --overwrite the link is
    replaced by a real directory; the directory the link pointed to keeps its mode and mtime."""
    dest, outside = area
    dest.mkdir(parents=True)
    os.symlink(outside, dest / "door")
    os.chmod(outside, 0o755)
    before = os.stat(outside)
    arc = sandwich(tmp_path, dir_member("door", mode=0o700, mtime_ns=10**9))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["door"])
    rc, err = extract(capsys, arc, dest, "--overwrite")
    assert rc == 0, err
    after = os.stat(outside)
    assert (stat.S_IMODE(after.st_mode), after.st_mtime_ns) == (0o755, before.st_mtime_ns)
    assert not os.path.islink(dest / "door") and (dest / "door").is_dir()
    _outside_unchanged(outside)


def test_existing_symlink_at_target_replaced_not_followed(capsys, tmp_path, area):
    """With --overwrite a symlink at a file's name is replaced by the file; what it pointed to is untouched."""
    dest, outside = area
    dest.mkdir(parents=True)
    os.symlink(outside / "keep.txt", dest / "f")
    arc = sandwich(tmp_path, file_member("f", b"new"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["f"])
    assert os.path.islink(dest / "f")
    rc, err = extract(capsys, arc, dest, "--overwrite")
    assert rc == 0, err
    assert not os.path.islink(dest / "f") and (dest / "f").read_bytes() == b"new"
    _outside_unchanged(outside)


def test_existing_files_not_clobbered_without_overwrite(capsys, tmp_path, area):
    dest, outside = area
    dest.mkdir(parents=True)
    (dest / "before.txt").write_bytes(b"mine")
    arc = tmp_path / "a.lmar"
    craft_archive(arc, [file_member("before.txt", b"theirs"), file_member("new.txt", b"new")])
    rc, err = extract(capsys, arc, dest)
    assert rc == 1 and "before.txt" in err and "already exists" in err
    assert (dest / "before.txt").read_bytes() == b"mine"
    assert (dest / "new.txt").read_bytes() == b"new"
    rc, err = extract(capsys, arc, dest, "--overwrite")
    assert rc == 0, err
    assert (dest / "before.txt").read_bytes() == b"theirs"


def test_directory_in_the_way_is_not_replaced(capsys, tmp_path, area):
    dest, outside = area
    (dest / "x").mkdir(parents=True)
    (dest / "x" / "inner").write_bytes(b"keep")
    arc = tmp_path / "a.lmar"
    craft_archive(arc, [file_member("x", b"file now")])
    rc, err = extract(capsys, arc, dest, "--overwrite")
    assert rc == 1 and "x" in err
    assert (dest / "x" / "inner").read_bytes() == b"keep"


def test_setuid_setgid_sticky_and_group_write_dropped(capsys, tmp_path, area):
    dest, outside = area
    arc = tmp_path / "modes.lmar"
    craft_archive(arc, [file_member("suid", b"x", mode=0o4755), file_member("sgid", b"x", mode=0o2775),
                        file_member("ww", b"x", mode=0o666), dir_member("sticky", mode=0o1777),
                        dir_member("dsgid", mode=0o2750)])
    rc, err = extract(capsys, arc, dest)
    assert rc == 0, err
    modes = {n: stat.S_IMODE(os.lstat(dest / n).st_mode) for n in ("suid", "sgid", "ww", "sticky", "dsgid")}
    assert modes == {"suid": 0o755, "sgid": 0o755, "ww": 0o644, "sticky": 0o755, "dsgid": 0o750}


@pytest.mark.parametrize("mtype", ["chardev", "blockdev", "fifo", "socket", "device", "whiteout"])
def test_unknown_and_device_member_types_refused(capsys, tmp_path, area, mtype):
    """Devices and FIFOs are never created; the member is named and the rest still extracted."""
    dest, outside = area
    arc = sandwich(tmp_path, ({"path": f"dev_{mtype}", "type": mtype, "mode": 0o666}, None))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, [f"dev_{mtype}"])
    assert not os.path.lexists(dest / f"dev_{mtype}")


def test_bad_member_names_refused(capsys, tmp_path, area):
    dest, outside = area
    arc = sandwich(tmp_path, file_member("", b"x"), file_member(".", b"x"), file_member("a\0b", b"x"))
    rc, err = extract(capsys, arc, dest)
    assert rc == 1 and err.count("lmar: ") >= 3
    assert listing(dest) == {"before.txt", "after.txt"}


def test_link_target_empty_refused(capsys, tmp_path, area):
    dest, outside = area
    arc = sandwich(tmp_path, link_member("s", ""), link_member("h", "", kind="hardlink"))
    rc, err = extract(capsys, arc, dest)
    assert_refused_rest_extracted(rc, err, dest, ["s", "h"])


@pytest.mark.parametrize("bad", ["/x", "../x", "a/../../x", "", ".", "x\0y", "\\x", "C:x"])
def test_safe_relpath_refuses(bad):
    with pytest.raises(UnsafeMemberError):
        safe_relpath(bad)


@pytest.mark.parametrize("ok, expected", [("a/b", "a/b"), ("./a//b/", "a/b"), ("a/./b", "a/b"), ("..a", "..a"),
                                          ("a..", "a..")])
def test_safe_relpath_normalises(ok, expected):
    assert safe_relpath(ok) == expected


def test_hostile_archive_through_the_real_command(tmp_path, area):
    """One subprocess with everything at once: exit code 1, one line per refusal, no traceback."""
    dest, outside = area
    dest.mkdir(parents=True)
    os.symlink(outside, dest / "door")
    hostile = [file_member("/abs.txt", b"e"), file_member("../up.txt", b"e"), link_member("sl", "/etc"),
               link_member("sl2", "../outside"), link_member("hl", "../outside/keep.txt", kind="hardlink"),
               file_member("door/keep.txt", b"e"), ({"path": "fifo", "type": "fifo"}, None),
               file_member("suid", b"ok", mode=0o4755)]
    arc = sandwich(tmp_path, *hostile)
    run = run_lmar("extract", arc, "-C", dest)
    assert_clean(run)
    assert run.rc == 1, run.err
    for name in ("/abs.txt", "../up.txt", "sl", "sl2", "hl", "door/keep.txt", "fifo"):
        assert any(name in line for line in run.err.splitlines() if line.startswith("lmar: ")), (name, run.err)
    assert listing(dest) == {"before.txt", "after.txt", "door", "suid"}
    assert stat.S_IMODE(os.stat(dest / "suid").st_mode) == 0o755
    _outside_unchanged(outside)
    # The same archive from a pipe (no index: members are refused while scanning, and skipped over).
    piped = dest.parent / "piped"
    run = run_lmar("extract", "-", "-C", piped, input=arc.read_bytes())
    assert_clean(run)
    assert run.rc == 1, run.err
    assert listing(piped) == {"before.txt", "after.txt", "suid", "door", "door/keep.txt"}  # no symlink there
    _outside_unchanged(outside)
