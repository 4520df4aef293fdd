"""Every image the project writes carries C2PA Content Credentials, read here by the c2pa library itself."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.metadata import add_recipe, parameters_from_png, png_with_recipe, recipe_from_png
from chatcanvas.provenance import credentials, derived_png, verify_image
from chatcanvas.store import Store
from chatcanvas.types import ImageSpec, Mode, Recipe
from tests.provenance.conftest import (
    actions,
    active,
    c2pa_store,
    failures,
    imwatermark_payload,
    png_of,
    still_life,
)
from tests.test_cli import run

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def signed_recipe(png: bytes) -> dict[str, object]:
    man = active(c2pa_store(png))
    return dict(next(a["data"] for a in man["assertions"] if a["label"] == "org.chatcanvas.recipe"))


def a_recipe(**over: object) -> Recipe:
    base: dict[str, object] = dict(
        prompt="a blue bowl and a red cone on a table",
        width=320,
        height=320,
        seed=11,
        steps=20,
        guidance=6.5,
        sampler="Euler a",
        model="tiny-test",
        backend="local",
    )
    base.update(over)
    return Recipe(**base)  # type: ignore[arg-type]


def test_cli_demo_image_has_a_created_by_a_model_manifest(tmp_path: Path) -> None:
    p = run(tmp_path, "generate", "a green sneaker", "-o", "sneaker.png", "--seed", "7", "--steps", "4")
    assert p.returncode == 0, p.stderr
    png = (tmp_path / "sneaker.png").read_bytes()
    store = c2pa_store(png)
    man = active(store)
    created = [a for a in actions(man) if a["action"] == "c2pa.created"]
    assert created and created[0]["digitalSourceType"] == TRAINED
    assert man["claim_generator_info"][0]["name"] == "chatcanvas"
    assert failures(store) <= {"signingCredential.untrusted"}
    assert store["validation_state"] == "Valid"
    # the A1111 text and our JSON recipe are still there for other tools, and the demo is too small to mark
    with Image.open(io.BytesIO(png)) as im:
        assert {"parameters", "chatcanvas"} <= set(im.text)
    assert parameters_from_png(png)["prompt"] == "a green sneaker"
    recipe = signed_recipe(png)
    assert recipe["prompt"] == "a green sneaker" and recipe["seed"] == 7
    assert recipe["watermark"] == "skipped, too small"
    assert (tmp_path / "data" / "c2pa" / "signer.pem").is_file()


def test_tiny_checkpoint_256_image_is_signed_and_watermarked(tmp_path: Path, tiny_model_dir: Path) -> None:
    p = run(
        tmp_path,
        *("generate", "a yellow cap", "--model", str(tiny_model_dir), "--size", "256x256"),
        *("--steps", "2", "--seed", "4", "-o", "cap.png"),
    )
    assert p.returncode == 0, p.stderr
    png = (tmp_path / "cap.png").read_bytes()
    store = c2pa_store(png)
    names = [a["action"] for a in actions(active(store))]
    assert names[0] == "c2pa.created" and "c2pa.watermarked" in names
    assert actions(active(store))[0]["digitalSourceType"] == TRAINED
    assert failures(store) <= {"signingCredential.untrusted"}
    assert imwatermark_payload(png) == b"CCAI"
    assert signed_recipe(png)["watermark"] == "dwtDct CCAI"
    assert parameters_from_png(png)["Seed"] == "4" and parameters_from_png(png)["Size"] == "256x256"


async def test_backend_image_json_recipe_is_the_one_it_returns(settings: Settings) -> None:
    backend = DiffusersBackend(settings)
    spec = backend.resolve(ImageSpec(prompt="a yellow cap", seed=4, steps=2, width=256, height=256))
    img = (await backend.generate([spec]))[0]
    assert recipe_from_png(img.png) == img.recipe
    assert signed_recipe(img.png)["watermark"] == "dwtDct CCAI"


async def test_image_to_image_names_its_source_as_parent_ingredient(settings: Settings) -> None:
    backend = DiffusersBackend(settings)
    first = (await backend.generate([backend.resolve(ImageSpec(prompt="a mug", seed=3, steps=2))]))[0]
    Store(settings.data_dir).write_image_file(first)  # one of ours, as "vary" and reroll buttons use
    source_id = first.id
    spec = backend.resolve(ImageSpec(prompt="a blue mug", seed=3, steps=2, init_image=source_id, strength=0.6))
    edited = (await backend.generate([spec]))[0]
    store = c2pa_store(edited.png)
    man = active(store)
    names = [a["action"] for a in actions(man)]
    assert names[:2] == ["c2pa.opened", "c2pa.edited"]
    edit = actions(man)[1]
    assert edit["digitalSourceType"] == TRAINED and edit["parameters"]["init_image"] == source_id
    (parent,) = man["ingredients"]
    assert parent["relationship"] == "parentOf"
    assert parent["active_manifest"] in store["manifests"]  # the source's own credentials, kept
    assert failures(store) <= {"signingCredential.untrusted"}


def test_edit_without_the_source_at_hand_still_says_edited(signing_settings: Settings) -> None:
    recipe = a_recipe(mode=Mode.INPAINT, init_image="f" * 32, mask_image="e" * 32, strength=1.0)
    png = png_with_recipe(still_life(), recipe)
    man = active(c2pa_store(png))
    names = [a["action"] for a in actions(man)]
    assert names[:2] == ["c2pa.created", "c2pa.edited"] and not man.get("ingredients")


def test_a_service_image_with_its_own_manifest_becomes_the_parent(tmp_path: Path) -> None:
    # an image signed elsewhere (its own signer, another generator), like the OpenAI API's
    elsewhere = Settings(data_dir=tmp_path / "service")
    service_png = png_with_recipe(still_life(seed=2), a_recipe(backend="service"), settings=elsewhere)
    ours = add_recipe(service_png, a_recipe(backend="openai", model="gpt-image-1"))
    store = c2pa_store(ours)
    man = active(store)
    assert [a["action"] for a in actions(man)][0] == "c2pa.opened"
    (parent,) = man["ingredients"]
    assert parent["relationship"] == "parentOf" and parent["active_manifest"] in store["manifests"]
    report = verify_image(ours)
    assert report.ok and report.made_by_model and report.ingredients[0].has_manifest


def test_a_plain_service_image_is_created_by_its_model() -> None:
    ours = add_recipe(png_of(still_life(seed=9)), a_recipe(backend="openai", model="dall-e-3"))
    man = active(c2pa_store(ours))
    created = actions(man)[0]
    assert created["action"] == "c2pa.created" and created["parameters"]["model"] == "dall-e-3"


def test_a_smaller_copy_and_a_contact_sheet_keep_credentials(signing_settings: Settings) -> None:
    a = png_with_recipe(still_life(seed=1), a_recipe(seed=1))
    b = png_with_recipe(still_life(seed=2), a_recipe(seed=2))
    with Image.open(io.BytesIO(a)) as im:
        text = dict(im.text)
        small = derived_png(im.resize((240, 240)), [a], action="c2pa.resized", text=text)
    man = active(c2pa_store(small))
    assert [x["action"] for x in actions(man)][:2] == ["c2pa.opened", "c2pa.resized"]
    assert parameters_from_png(small)["Seed"] == "1"
    sheet = derived_png(Image.new("RGB", (644, 320)), [a, b], action="c2pa.placed")
    man = active(c2pa_store(sheet))
    assert len(man["ingredients"]) == 2 and {i["relationship"] for i in man["ingredients"]} == {"componentOf"}
    assert verify_image(sheet).made_by_model


def test_provenance_off_and_watermark_off(settings: Settings) -> None:
    off = png_with_recipe(still_life(), a_recipe(), settings=settings.model_copy(update={"provenance": False}))
    assert verify_image(off).manifest == "absent" and not verify_image(off).watermark.found
    no_mark = png_with_recipe(still_life(), a_recipe(), settings=settings.model_copy(update={"watermark": False}))
    report = verify_image(no_mark)
    assert report.ok and not report.watermark.found and "c2pa.watermarked" not in report.actions


def test_configured_certificate_is_the_signer(tmp_path: Path, settings: Settings) -> None:
    bundle = credentials._issue()  # a chain issued by another CA than the data dir's
    start = bundle.index(b"-----BEGIN CERTIFICATE-----")
    (tmp_path / "chain.pem").write_bytes(bundle[start:])
    (tmp_path / "key.pem").write_bytes(bundle[:start])
    mine = settings.model_copy(update={"c2pa_cert": str(tmp_path / "chain.pem"), "c2pa_key": str(tmp_path / "key.pem")})
    png = png_with_recipe(still_life(), a_recipe(), settings=mine)
    sig = active(c2pa_store(png))["signature_info"]
    expected = credentials.configured(str(tmp_path / "chain.pem"), str(tmp_path / "key.pem"))
    assert sig["cert_serial_number"] == expected.serial
    assert verify_image(png, mine).signer.signed_here  # type: ignore[union-attr]
    assert not verify_image(png, settings).signer.signed_here  # type: ignore[union-attr]


def test_half_configured_certificate_stops_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from chatcanvas.config import load_settings
    from chatcanvas.errors import ConfigError

    monkeypatch.setenv("CHATCANVAS_C2PA_CERT", str(tmp_path / "chain.pem"))
    with pytest.raises(ConfigError, match="CHATCANVAS_C2PA_KEY"):
        load_settings()


def test_manifest_json_recipe_matches_png_recipe(signing_settings: Settings) -> None:
    png = png_with_recipe(still_life(), a_recipe(style="watercolour"))
    signed = signed_recipe(png)
    assert signed.pop("watermark") == "dwtDct CCAI"
    assert signed == json.loads(Image.open(io.BytesIO(png)).text["chatcanvas"])
