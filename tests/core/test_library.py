"""The library as a user meets it: adding, skipping, duplicates, moves, removal, repair, crashes."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fpgui.core.architecture import FingerprintNet
from fpgui.core.catalogue import Catalogue
from fpgui.core.embedder import Embedder
from fpgui.core.errors import LibraryBusyError, LibraryError
from fpgui.core.index import FingerprintIndex
from fpgui.core.library import AddOutcome, Library
from fpgui.core.locking import WriteLock
from fpgui.core.matching import check
from fpgui.core.model_files import ModelMetadata, save_model_bundle
from tests.conftest import make_photo

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    # The session fixture ``random_model_dir`` cannot be used from a module-scoped one, so this
    # module exports the same kind of random model itself.
    return Embedder(_random_model(tmp_path_factory.mktemp("model"), seed=0), device="cpu")


def _random_model(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    network = FingerprintNet(embedding_dim=128, in_channels=1, l2_normalize=True).eval()
    meta = ModelMetadata(name=f"test-random-{seed}", version="0", input_size=64, threshold=0.05)
    save_model_bundle(network, meta, folder)
    return folder


@pytest.fixture
def library(tmp_path: Path, embedder: Embedder) -> Library:
    lib = Library.open(tmp_path / "library", embedder, lock_timeout=0.2)
    yield lib
    lib.close()


def _outcomes(library: Library, paths: list[Path], **kwargs: object) -> dict[str, AddOutcome]:
    return {
        Path(p.path).name: p.outcome
        for p in library.add(paths, **kwargs)  # type: ignore[arg-type]
        if p.outcome is not None and p.path
    }


def _saved_index_ids(library: Library, embedder: Embedder) -> set[int]:
    saved = FingerprintIndex.load(
        library.index_folder, dim=embedder.embedding_dim, model_sha256=embedder.model_sha256
    )
    return {int(i) for i in saved.live_ids()}


def _catalogue_ids(library: Library) -> set[int]:
    return {image.id for image in library.images(check_files=False)}


# -- adding ---------------------------------------------------------------------------------------


def test_add_folder_then_again_skips_unchanged(library: Library, photo_folder: Path) -> None:
    first = library.add_all([photo_folder])
    assert first.added == 8 and not first.failed
    assert len(library.images()) == 8

    again = library.add_all([photo_folder])
    assert again.skipped_unchanged == 8
    assert again.added == 0 and not again.failed


def test_progress_counts_every_file_in_order(library: Library, photo_folder: Path) -> None:
    steps = list(library.add([photo_folder], batch_size=3))
    assert [s.done for s in steps] == list(range(1, 9))
    assert all(s.total == 8 for s in steps)
    assert [Path(s.path or "").name for s in steps] == sorted(
        p.name for p in photo_folder.iterdir()
    )


def test_recursive_folders_and_symlink_loop(library: Library, photo_folder: Path) -> None:
    nested = photo_folder / "a" / "b"
    nested.mkdir(parents=True)
    make_photo(100).save(nested / "deep.png")
    (nested / "loop").symlink_to(photo_folder, target_is_directory=True)
    (photo_folder / "notes.txt").write_text("not looked at: no image suffix")

    summary = library.add_all([photo_folder])

    assert summary.added == 9
    assert not summary.failed
    assert summary.duplicates == []


def test_duplicate_bytes_recorded_once(library: Library, photo_folder: Path) -> None:
    copy = photo_folder / "z_copy_of_0.jpg"
    shutil.copyfile(photo_folder / "photo_0.jpg", copy)

    summary = library.add_all([photo_folder])

    assert summary.added == 8
    assert summary.duplicates == [(str(copy), str(photo_folder / "photo_0.jpg"))]
    (original,) = [i for i in library.images() if i.path.endswith("photo_0.jpg")]
    assert original.duplicate_paths == (str(copy),)
    assert library.add_all([photo_folder]).skipped_unchanged == 9


def test_moved_file_keeps_its_fingerprint(library: Library, photo_folder: Path) -> None:
    library.add_all([photo_folder])
    before = {i.path: i.id for i in library.images()}
    new_home = photo_folder.parent / "elsewhere"
    new_home.mkdir()
    moved = new_home / "renamed.jpg"
    (photo_folder / "photo_3.jpg").rename(moved)

    summary = library.add_all([new_home])

    assert summary.moved == [(str(photo_folder / "photo_3.jpg"), str(moved))]
    assert summary.added == 0
    after = {i.path: i.id for i in library.images()}
    assert after[str(moved)] == before[str(photo_folder / "photo_3.jpg")]
    assert str(photo_folder / "photo_3.jpg") not in after


def test_changed_content_is_fingerprinted_again(
    library: Library, photo_folder: Path, embedder: Embedder
) -> None:
    library.add_all([photo_folder])
    target = photo_folder / "photo_2.jpg"
    make_photo(222).save(target, quality=90)
    os.utime(target, ns=(1, 1))

    summary = library.add_all([photo_folder])

    assert summary.updated == 1 and summary.skipped_unchanged == 7
    result = check(library, target)
    assert result.matches[0].path == str(target) and result.matches[0].distance < 1e-3
    assert _saved_index_ids(library, embedder) == _catalogue_ids(library)


def test_cancel_keeps_what_was_done_and_resumes(library: Library, photo_folder: Path) -> None:
    seen: list[str] = []
    for step in library.add([photo_folder], should_stop=lambda: len(seen) >= 2, batch_size=2):
        seen.append(step.path or "")
    assert step.summary.cancelled
    assert len(library.images()) == 2

    summary = library.add_all([photo_folder])
    assert summary.skipped_unchanged == 2 and summary.added == 6


def test_closing_the_generator_keeps_what_was_done(
    library: Library, photo_folder: Path, embedder: Embedder
) -> None:
    steps = library.add([photo_folder], batch_size=2)
    next(steps)
    steps.close()
    assert len(library.images()) == 2
    assert _saved_index_ids(library, embedder) == _catalogue_ids(library)
    library.add_all([photo_folder])  # the lock was released


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))


def test_folder_of_awkward_files(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "awkward"
    folder.mkdir()
    make_photo(1).save(folder / "good.jpg")
    make_photo(2).convert("CMYK").save(folder / "cmyk.jpg")
    wide = (np.asarray(make_photo(3).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(wide).save(folder / "sixteen_bit.png")
    frames = [make_photo(s, (160, 120)).convert("P") for s in (4, 5, 6)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    exif = Image.Exif()
    exif[0x0112] = 6
    make_photo(7).save(folder / "rotated.jpg", exif=exif)
    make_photo(8).save(folder / "alpha.png")

    jpeg = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(4000))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("this is not a picture")
    (folder / "huge.png").write_bytes(_png_with_size(100_000, 100_000))
    (folder / "unreadable.jpg").symlink_to(folder / "gone.jpg")  # a link to nothing
    (folder / "folder.jpg").mkdir()  # a folder with an image suffix is walked, not read

    summary = library.add_all([folder])

    added = {Path(i.path).name for i in library.images()}
    assert added == {"good.jpg", "cmyk.jpg", "sixteen_bit.png", "animated.gif", "rotated.jpg",
                     "alpha.png"}  # fmt: skip
    reasons = {Path(path).name: reason for path, reason in summary.failed}
    assert set(reasons) == {"truncated.jpg", "corrupt.jpg", "empty.jpg", "notes.png", "huge.png",
                            "unreadable.jpg"}  # fmt: skip
    assert "truncated" in reasons["truncated.jpg"]
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.png"]
    assert "too large" in reasons["huge.png"]
    assert "broken link" in reasons["unreadable.jpg"]
    assert all(reasons.values())
    rotated = next(i for i in library.images() if i.path.endswith("rotated.jpg"))
    assert (rotated.width, rotated.height) == (240, 320)


def test_unreadable_file_is_reported(
    library: Library, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Running as root, chmod 000 does not stop reading; refuse the open instead.
    locked = str(photo_folder / "photo_4.jpg")
    real_open = open

    def guarded_open(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", locked)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", guarded_open)
    summary = library.add_all([photo_folder])

    assert summary.added == 7
    assert summary.failed == [(locked, "permission denied")]


def test_file_vanishing_during_add_is_reported(library: Library, photo_folder: Path) -> None:
    failed: dict[str, str] = {}
    for step in library.add([photo_folder], batch_size=2):
        if step.done == 1:  # batch 2 is already read ahead; batches 3 and 4 are not looked at
            (photo_folder / "photo_5.jpg").unlink()
            (photo_folder / "photo_7.jpg").unlink()
        if step.outcome is AddOutcome.FAILED:
            failed[Path(step.path or "").name] = step.detail or ""
    assert set(failed) == {"photo_5.jpg", "photo_7.jpg"}
    assert all("not found" in reason for reason in failed.values())
    assert len(library.images()) == 6


def test_missing_argument_is_reported(library: Library, tmp_path: Path) -> None:
    summary = library.add_all([tmp_path / "no-such-folder"])
    assert summary.failed == [(str(tmp_path / "no-such-folder"), "file not found")]


# -- removing and listing -------------------------------------------------------------------------


def test_remove_file_and_folder(library: Library, photo_folder: Path, tmp_path: Path) -> None:
    library.add_all([photo_folder])
    result = library.remove([photo_folder / "photo_1.jpg", tmp_path / "not-there.jpg"])
    assert result.removed == [str(photo_folder / "photo_1.jpg")]
    assert result.not_found == [str(tmp_path / "not-there.jpg")]
    answer = check(library, photo_folder / "photo_1.jpg")
    assert all(m.path != str(photo_folder / "photo_1.jpg") for m in answer.matches)

    library.remove([photo_folder])
    assert library.images() == []


def test_removing_original_keeps_its_duplicate(library: Library, photo_folder: Path) -> None:
    copy = photo_folder / "z_copy.jpg"
    shutil.copyfile(photo_folder / "photo_0.jpg", copy)
    library.add_all([photo_folder])

    library.remove([photo_folder / "photo_0.jpg"])

    survivor = next(i for i in library.images() if i.path == str(copy))
    assert survivor.duplicate_paths == ()
    assert check(library, copy).matches[0].path == str(copy)


def test_neighbourhood_gives_the_stored_fingerprints_of_the_nearest(
    library: Library, photo_folder: Path, embedder: Embedder
) -> None:
    library.add_all([photo_folder])
    query = embedder.embed_image(Image.open(photo_folder / "photo_3.jpg"))
    hood = library.neighbourhood(query, 4)
    assert [image.path for image, _ in hood.images] == [
        image.path for image, _ in library.nearest(query, 4)
    ]
    assert hood.images[0][0].path == str(photo_folder / "photo_3.jpg")
    assert hood.fingerprints.shape == (4, embedder.embedding_dim)
    for (image, distance), fingerprint in zip(hood.images, hood.fingerprints, strict=True):
        stored = embedder.embed_image(Image.open(image.path))
        np.testing.assert_allclose(fingerprint, stored, atol=1e-5)
        assert float(np.linalg.norm(fingerprint - query)) == pytest.approx(distance, abs=1e-5)
    assert hood.searched == 8
    library.remove([photo_folder / "photo_0.jpg"])
    everything = library.neighbourhood(query, 50)
    assert (len(everything.images), everything.searched) == (7, 7)


def test_list_marks_missing_files(library: Library, photo_folder: Path) -> None:
    library.add_all([photo_folder])
    (photo_folder / "photo_6.jpg").unlink()
    missing = [i.path for i in library.images() if i.missing]
    assert missing == [str(photo_folder / "photo_6.jpg")]


# -- verify, repair, model change -----------------------------------------------------------------


def test_verify_repairs_a_lost_index(
    library: Library, photo_folder: Path, embedder: Embedder
) -> None:
    library.add_all([photo_folder])
    assert library.verify().ok
    shutil.rmtree(library.index_folder)

    report = library.verify()
    assert not report.ok and report.index_problem

    repaired = library.verify(repair=True)
    assert repaired.ok, repaired.problems()
    assert _saved_index_ids(library, embedder) == _catalogue_ids(library)


def test_verify_reports_missing_and_changed_files(library: Library, photo_folder: Path) -> None:
    library.add_all([photo_folder])
    (photo_folder / "photo_0.jpg").unlink()
    make_photo(99).save(photo_folder / "photo_1.jpg")
    os.utime(photo_folder / "photo_1.jpg", ns=(5, 5))

    report = library.verify()
    assert report.missing_files == [str(photo_folder / "photo_0.jpg")]
    assert report.changed_files == [str(photo_folder / "photo_1.jpg")]

    repaired = library.verify(repair=True)
    assert repaired.changed_files == []
    assert repaired.missing_files == [str(photo_folder / "photo_0.jpg")]  # kept, still protected
    assert any("missing" in action for action in repaired.repairs)
    assert check(library, photo_folder / "photo_1.jpg").matches[0].distance < 1e-3


def test_model_change_is_detected_and_reembedded(
    tmp_path: Path, photo_folder: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "library"
    with Library.open(folder, embedder) as first:
        first.add_all([photo_folder])
        assert first.info().library_model_id == embedder.metadata.model_id

    other = Embedder(_random_model(tmp_path / "model-2", seed=1), device="cpu")
    with Library.open(folder, other) as library:
        assert library.needs_reembed() == 8
        info = library.info()
        assert info.library_model_id == embedder.metadata.model_id
        assert info.model_id == other.metadata.model_id
        report = library.verify()
        assert report.other_model == 8 and not report.ok
        assert check(library, photo_folder / "photo_0.jpg").not_compared == 8

        steps = list(library.reembed())
        assert [s.outcome for s in steps] == [AddOutcome.REEMBEDDED] * 8
        assert library.verify().ok
        assert library.info().library_model_id == other.metadata.model_id
        result = check(library, photo_folder / "photo_0.jpg")
        assert result.not_compared == 0 and result.is_copy


def test_adding_after_model_change_reembeds_unchanged_files(
    tmp_path: Path, photo_folder: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "library"
    with Library.open(folder, embedder) as first:
        first.add_all([photo_folder])
    other = Embedder(_random_model(tmp_path / "model-2", seed=1), device="cpu")
    with Library.open(folder, other) as library:
        summary = library.add_all([photo_folder])
        assert summary.reembedded == 8 and summary.added == 0
        assert library.needs_reembed() == 0


# -- crashes, full disks, two writers -----------------------------------------------------------


_SLOW_ADD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fpgui.core.embedder import Embedder
    from fpgui.core.library import Library

    embedder = Embedder(Path(sys.argv[1]), device="cpu")
    real = embedder.embed_tensors
    def slow(batch):
        time.sleep(0.3)
        return real(batch)
    embedder.embed_tensors = slow
    library = Library.open(sys.argv[2], embedder)
    for step in library.add([sys.argv[3]], batch_size=2):
        print(step.done, flush=True)
    print("finished", flush=True)
    """
)


def test_sigkill_mid_add_leaves_a_consistent_library(tmp_path: Path, embedder: Embedder) -> None:
    photos = tmp_path / "many"
    photos.mkdir()
    for seed in range(24):
        make_photo(seed, (160, 120)).save(photos / f"p{seed:02d}.jpg")
    script = tmp_path / "slow_add.py"
    script.write_text(_SLOW_ADD)
    folder = tmp_path / "library"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(embedder.model_dir), str(folder), str(photos)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        for line in child.stdout:
            if line.strip() == "finished" or int(line) >= 6:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    with Library.open(folder, embedder, lock_timeout=5) as library:
        done = _catalogue_ids(library)
        assert 6 <= len(done) < 24
        report = library.verify()
        assert report.ok, report.problems()
        assert _saved_index_ids(library, embedder) == done

        summary = library.add_all([photos])
        assert summary.added == 24 - len(done)
        assert summary.skipped_unchanged == len(done)
        assert library.verify().ok
        assert len(library.images()) == 24


def test_failed_index_save_leaves_previous_library(
    library: Library, photo_folder: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    library.add_all([photo_folder / "photo_0.jpg", photo_folder / "photo_1.jpg"])
    before = _saved_index_ids(library, embedder)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(LibraryError, match="No space left"):
        patch.setattr("fpgui.core.atomic.os.fsync", disk_full)
        library.add_all([photo_folder])

    assert _saved_index_ids(library, embedder) == before  # the old index still loads
    assert not list(library.index_folder.glob("*.tmp"))
    library.close()
    with Library.open(library.folder, embedder) as reopened:
        assert reopened.verify().ok
        assert check(reopened, photo_folder / "photo_0.jpg").is_copy


def test_failed_catalogue_write_rolls_back(
    library: Library, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library.add_all([photo_folder / "photo_0.jpg"])

    def disk_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch, pytest.raises(LibraryError, match="disk is full"):
        patch.setattr(Catalogue, "put_embedding", disk_full)
        library.add_all([photo_folder])

    assert [Path(i.path).name for i in library.images()] == ["photo_0.jpg"]
    assert library.verify().ok
    assert library.add_all([photo_folder]).added == 7


def test_second_writer_gets_busy_error(
    tmp_path: Path, photo_folder: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "library"
    first = Library.open(folder, embedder, lock_timeout=0.2)
    second = Library.open(folder, embedder, lock_timeout=0.2)
    steps = first.add([photo_folder], batch_size=2)
    next(steps)  # the first writer is mid-add and holds the lock
    started = time.monotonic()
    with pytest.raises(LibraryBusyError, match="library is busy"):
        second.add_all([photo_folder])
    assert time.monotonic() - started >= 0.2
    # Readers are not blocked.
    assert check(second, photo_folder / "photo_0.jpg").matches
    list(steps)
    assert second.add_all([photo_folder]).skipped_unchanged == 8
    first.close()
    second.close()


def test_writer_in_another_process_makes_us_wait_then_fail(
    tmp_path: Path, photo_folder: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "library"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from fpgui.core.locking import WriteLock
            lock = WriteLock({str(folder / "write.lock")!r}, "adding images", 1.0)
            lock.acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            Library.open(folder, embedder, lock_timeout=0.3) as library,
            pytest.raises(LibraryBusyError, match=f"pid {holder.pid}, adding images"),
        ):
            library.add_all([photo_folder])
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock.
    with WriteLock(folder / "write.lock", "test", 1.0):
        pass


def test_open_without_create_refuses_missing_library(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="no library at"):
        Library.open(tmp_path / "nothing", create=False)
