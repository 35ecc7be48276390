"""The ``fpgui`` command line, end to end through ``main([...])``."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import pytest

from fpgui.cli import main
from fpgui.core.model_files import METADATA_FILE, read_metadata
from tests.conftest import make_photo


@pytest.fixture
def cli(tmp_path: Path, random_model_dir: Path) -> list[str]:
    """The global options every call shares: a fresh library, the random model, the CPU."""
    return ["--library", str(tmp_path / "library"), "--model", str(random_model_dir),
            "--device", "cpu"]  # fmt: skip


def test_add_prints_a_summary_and_skips_on_the_second_run(
    cli: list[str], photo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8 nope")

    assert main([*cli, "add", str(photo_folder)]) == 1  # one file failed
    out = capsys.readouterr().out
    assert "8 added, 0 unchanged, 0 duplicates, 1 failed" in out
    assert f"failed: {photo_folder / 'broken.jpg'}: " in out

    (photo_folder / "broken.jpg").unlink()
    assert main([*cli, "add", str(photo_folder)]) == 0
    assert "0 added, 8 unchanged" in capsys.readouterr().out


def test_global_options_work_after_the_command(
    cli: list[str], photo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", *cli, str(photo_folder / "photo_0.jpg")]) == 0
    assert "1 added" in capsys.readouterr().out


def test_check_json_reports_every_query_and_fails_at_the_end(
    cli: list[str], photo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*cli, "add", str(photo_folder)])
    queries = tmp_path / "queries"
    queries.mkdir()
    (photo_folder / "photo_3.jpg").rename(queries / "a_copy.jpg")
    (queries / "b_bad.jpg").write_text("not an image")
    make_photo(500).save(queries / "c_new.png")
    capsys.readouterr()

    status = main([*cli, "check", str(queries), "--json", "--top-k", "3"])

    assert status == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(line["query"]).name for line in lines] == ["a_copy.jpg", "b_bad.jpg", "c_new.png"]
    copy, bad, new = lines
    assert copy["is_copy"] is True
    assert copy["matches"][0]["rank"] == 1
    assert copy["matches"][0]["path"] == str(photo_folder / "photo_3.jpg")
    assert copy["matches"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    assert len(copy["matches"]) == 3
    assert set(copy) == {
        "query", "sha256", "is_copy", "threshold", "verdict", "ratio", "ratio_threshold", "matches",
    }  # fmt: skip
    assert (copy["verdict"], copy["ratio"], copy["ratio_threshold"]) == ("copy", None, None)
    assert set(bad) == {"query", "error"} and "not an image" in bad["error"]
    assert new["is_copy"] == (new["matches"][0]["distance"] < new["threshold"])
    assert new["verdict"] == ("copy" if new["is_copy"] else "none")


def test_check_with_a_calibrated_model_says_possible_copy(
    tmp_path: Path, random_model_dir: Path, photo_folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # The random model's weights; copy below 0.05 (or a ratio below 0.01), possible below 1.9.
    model = tmp_path / "calibrated"
    shutil.copytree(random_model_dir, model)
    meta = dataclasses.replace(
        read_metadata(model), ratio_threshold=0.01, reference_distance=1.0, possible_threshold=1.9
    )
    (model / METADATA_FILE).write_text(meta.to_json(), encoding="utf-8")
    cli = ["--library", str(tmp_path / "library"), "--model", str(model), "--device", "cpu"]
    main([*cli, "add", str(photo_folder)])
    query = tmp_path / "unrelated.png"
    make_photo(500).save(query)
    capsys.readouterr()

    assert main([*cli, "check", str(query), "--json", "--top-k", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    d1, d2 = (m["distance"] for m in line["matches"])
    assert 0.05 < d1 < 1.0
    assert (line["verdict"], line["is_copy"]) == ("possible", False)
    assert line["ratio"] == pytest.approx(d1 / d2)
    assert line["ratio_threshold"] == 0.01
    assert line["threshold"] == 0.05

    assert main([*cli, "check", str(query)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    nearest = line["matches"][0]["path"]
    assert first == (
        f"{query}: POSSIBLE COPY of {nearest} - compare to confirm: distance {d1:.4f} "
        f"(threshold 0.0500, possible below 1.9000); {d1 / d2:.4f} x the next distinct image "
        "(ratio threshold 0.0100)"
    )


def test_check_human_output(
    cli: list[str], photo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*cli, "add", str(photo_folder)])
    capsys.readouterr()
    assert main([*cli, "check", str(photo_folder / "photo_1.jpg")]) == 0
    out = capsys.readouterr().out
    assert f"{photo_folder / 'photo_1.jpg'}: COPY of {photo_folder / 'photo_1.jpg'}: " in out
    assert "distance 0.0000 (threshold 0.0500)\n" in out
    assert "  1. 0.0000" in out


def test_list_remove_verify_info(
    cli: list[str], photo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*cli, "add", str(photo_folder)])
    capsys.readouterr()

    assert main([*cli, "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 8 and not any(item["missing"] for item in listed)

    assert main([*cli, "remove", str(photo_folder / "photo_0.jpg")]) == 0
    assert "1 removed" in capsys.readouterr().out
    assert main([*cli, "remove", str(photo_folder / "photo_0.jpg")]) == 1
    assert "not in the library" in capsys.readouterr().err

    assert main([*cli, "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 7

    assert main([*cli, "verify"]) == 0
    assert "ok: catalogue, index, model and files agree" in capsys.readouterr().out
    (photo_folder / "photo_1.jpg").unlink()
    assert main([*cli, "verify"]) == 1
    assert "1 image files are missing" in capsys.readouterr().out

    assert main([*cli, "info"]) == 0
    info = capsys.readouterr().out
    assert "images:            7" in info
    assert "device:            cpu" in info
    assert "model:             test-random-0-" in info


def test_library_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, random_model_dir: Path, photo_folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("FPGUI_LIBRARY", str(tmp_path / "env-library"))
    options = ["--model", str(random_model_dir), "--device", "cpu"]
    assert main([*options, "add", str(photo_folder / "photo_0.jpg")]) == 0
    assert (tmp_path / "env-library" / "catalogue.sqlite").is_file()


def test_errors_are_one_line_without_traceback(
    cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli, "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fpgui: error: no library at")
    assert "Traceback" not in err

    assert main(["--model", str(tmp_path / "no-model"), "--library", str(tmp_path), "info"]) == 1
    assert "fpgui: error: No fingerprint model in" in capsys.readouterr().err


def test_usage_errors_exit_2(cli: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*cli, "check", "x.jpg", "--top-k", "0"])
    assert exit_info.value.code == 2


def test_gui_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fpgui.ui.app", None)  # import now raises ImportError
    assert main([]) == 2
    assert "the desktop application cannot start" in capsys.readouterr().err


def test_gui_receives_library_and_device(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Path, str | None]] = []
    fake = type(sys)("fpgui.ui.app")
    fake.run_gui = lambda library_dir, device: calls.append((library_dir, device)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fpgui.ui.app", fake)
    assert main(["gui", "--library", str(tmp_path / "lib"), "--device", "cpu"]) == 0
    assert calls == [(tmp_path / "lib", "cpu")]


def test_importing_the_command_line_does_not_import_torch() -> None:
    """``fpgui`` must show its window before torch (seconds to import) is loaded."""
    import subprocess
    import sys

    code = "import sys, fpgui.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
