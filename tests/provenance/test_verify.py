"""`chatcanvas verify FILE...`: exit 0 on our images, 1 on others' or altered ones, 2 on unreadable input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.generation.metadata import png_with_recipe
from chatcanvas.provenance import verify_image
from tests.provenance.conftest import png_of, repaint_keeping_chunks, still_life
from tests.provenance.test_content_credentials import a_recipe
from tests.test_cli import run


def ours(tmp_path: Path, settings: Settings, name: str = "ours.png") -> Path:
    path = tmp_path / name
    path.write_bytes(png_with_recipe(still_life(), a_recipe(), settings=settings))
    return path


def dab_of_paint(arr: np.ndarray) -> None:
    arr[40:44, 50:53] = (255, 0, 255)


def test_our_image_passes_and_says_what_made_it(tmp_path: Path, settings: Settings) -> None:
    path = ours(tmp_path, settings)
    p = run(tmp_path, "verify", str(path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ours" in p.stdout and "tiny-test" in p.stdout and "untrusted" in p.stdout
    assert "watermark  found (32/32 bits)" in p.stdout


def test_plain_png_altered_png_and_unreadable_file(tmp_path: Path, settings: Settings) -> None:
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_of(still_life(seed=8)))
    p = run(tmp_path, "verify", str(plain))
    assert p.returncode == 1 and "No Content Credentials" in p.stdout

    altered = tmp_path / "altered.png"
    altered.write_bytes(repaint_keeping_chunks(ours(tmp_path, settings).read_bytes(), dab_of_paint))
    p = run(tmp_path, "verify", str(altered))
    assert p.returncode == 1 and "altered" in p.stdout

    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    p = run(tmp_path, "verify", str(notes), str(tmp_path / "missing.png"))
    assert p.returncode == 2
    assert p.stdout.count("unreadable") == 2 and "Traceback" not in p.stderr


def test_json_lists_every_file(tmp_path: Path, settings: Settings) -> None:
    a = ours(tmp_path, settings, "a.png")
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_of(still_life(seed=3)))
    p = run(tmp_path, "verify", "--json", str(a), str(plain))
    assert p.returncode == 1
    rows = json.loads(p.stdout)
    assert [r["verdict"] for r in rows] == ["ours", "absent"]
    assert rows[0]["file"] == str(a) and rows[0]["recipe"]["prompt"].startswith("a blue bowl")
    assert rows[0]["signer"]["trusted"] is False and rows[0]["created"]


def test_altered_report_keeps_the_signed_claims(tmp_path: Path, settings: Settings) -> None:
    png = ours(tmp_path, settings).read_bytes()
    report = verify_image(repaint_keeping_chunks(png, dab_of_paint), settings)
    assert report.verdict == "altered" and not report.ok
    assert any("dataHash.mismatch" in p for p in report.problems)
    assert report.generator and report.generator.startswith("chatcanvas")


def test_stripped_credentials_leave_the_watermark(settings: Settings) -> None:
    png = png_with_recipe(still_life(), a_recipe(), settings=settings)
    from PIL import PngImagePlugin

    im = Image.open(io.BytesIO(png))
    info = PngImagePlugin.PngInfo()
    for k, v in im.text.items():
        info.add_text(k, v)
    resaved = io.BytesIO()
    im.save(resaved, format="PNG", pnginfo=info)  # the text kept, the manifest chunk dropped (as PIL does)
    report = verify_image(resaved.getvalue(), settings)
    assert report.verdict == "absent" and report.watermark.found
    assert report.recipe is not None and not report.recipe_signed  # the text chunk, unsigned


def test_another_generators_credentials_are_not_ours(tmp_path: Path, settings: Settings) -> None:
    import c2pa

    from chatcanvas.provenance import signing

    png = png_of(still_life(seed=4))
    signer = signing._signer(settings)
    definition = {
        "claim_generator_info": [{"name": "some-editor", "version": "2.0"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with c2pa.Builder(definition, context=signer.context) as b:
        b.sign("image/png", io.BytesIO(png), out)
    report = verify_image(out.getvalue(), settings)
    assert report.verdict == "other" and not report.ok and report.manifest == "valid", report.problems
    assert not report.made_by_model and report.generator == "some-editor 2.0"


def test_checking_elsewhere_makes_no_certificate(tmp_path: Path, settings: Settings) -> None:
    png = ours(tmp_path, settings).read_bytes()
    fresh = Settings(data_dir=tmp_path / "elsewhere")
    report = verify_image(png, fresh)
    assert report.ok and report.signer is not None and not report.signer.signed_here
    assert not (tmp_path / "elsewhere" / "c2pa").exists()
