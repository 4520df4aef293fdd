"""Images come from the store by id, never from a path; uploads keep an owner and lose their metadata."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.errors import InputImageError
from chatcanvas.images import clean_png, import_image_file, load_upload, store_upload
from chatcanvas.store import Store
from chatcanvas.store.db import IMAGE_ID_RE, image_file, is_image_id, read_image_ref
from chatcanvas.types import Place, UserRef

ALICE = UserRef(platform="web", user="alice", server="key-1")
BOB = UserRef(platform="slack", user="U2", server="T1")
SHOP = Place(platform="web", channel="shop-chat", thread="conv-9")


def gps_jpeg(size: tuple[int, int] = (60, 30), orientation: int = 6) -> bytes:
    """A JPEG the way a phone writes one: camera make, GPS position, orientation, an ICC profile."""
    img = Image.new("RGB", size, (200, 40, 40))
    for x in range(size[0] // 2):  # a dark left half, to see the rotation
        for y in range(size[1]):
            img.putpixel((x, y), (20, 20, 20))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Pocket Cam 12"  # Model
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, icc_profile=icc, quality=95)
    return buf.getvalue()


def test_one_id_format() -> None:
    assert is_image_id("3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c") and is_image_id("u" + "a" * 31)
    for ref in ["../../etc/passwd", "/tmp/x.png", "u" + "A" * 31, "3f2a9c0e", "uPHOTO", "", "a" * 33, None]:
        assert not is_image_id(ref)
    assert IMAGE_ID_RE.fullmatch("u" + "0" * 31)


def test_reader_refuses_paths(cfg: Settings, tmp_path: Path) -> None:
    store = Store(cfg.data_dir)
    try:
        outside = tmp_path / "secret.png"
        Image.new("RGB", (4, 4)).save(outside)
        ident = store.put_upload(outside.read_bytes(), owner=ALICE, place=SHOP)
        for ref in (str(outside), "../../secret.png", f"../{ident[:2]}/{ident}", "images/../../secret.png"):
            with pytest.raises(InputImageError) as err:
                store.image_bytes(ref)
            assert str(err.value) == m.NOT_AN_IMAGE_ID
            with pytest.raises(InputImageError):
                read_image_ref(store.images_dir, ref)
            with pytest.raises(InputImageError):
                image_file(store.images_dir, ref)
        assert Image.open(io.BytesIO(store.image_bytes(ident))).size == (4, 4)
        with pytest.raises(InputImageError) as err:
            store.image_bytes("u" + "0" * 31)
        assert "There is no image" in str(err.value)
    finally:
        store.close()


def test_uploads_record_owner_and_place(cfg: Settings) -> None:
    store = Store(cfg.data_dir)
    try:
        png = clean_png(gps_jpeg())
        a = store.put_upload(png, owner=ALICE, place=SHOP)
        b = store.put_upload(png, owner=BOB, place=Place(platform="slack", channel="C1"))
        again = store.put_upload(png, owner=ALICE, place=SHOP)
        assert a == b == again and a.startswith("u")
        owners = store.image_owners(a)
        assert [(o.owner, o.place, o.kind) for o in owners] == [
            ("web:key-1:alice", "web:shop-chat:conv-9", "upload"),
            ("slack:T1:U2", "slack:C1:", "upload"),
        ]
        assert store.image_owner(a) == owners[0]
        anonymous = store.put_upload(clean_png(gps_jpeg((20, 20))))
        assert store.image_owner(anonymous).owner == ""  # type: ignore[union-attr]
        assert store.image_owner("u" + "f" * 31) is None and store.image_owners("../x") == []
    finally:
        store.close()


def test_visible_to_its_owner_and_in_its_conversation(cfg: Settings) -> None:
    store = Store(cfg.data_dir)
    try:
        ident = store.put_upload(clean_png(gps_jpeg()), owner=ALICE, place=SHOP)
        assert store.image_visible_to(ident, ALICE)  # anywhere: it is hers
        assert store.image_visible_to(ident, ALICE, Place(platform="web", channel="other"))
        assert store.image_visible_to(ident, BOB, SHOP)  # the conversation it was shared in
        assert not store.image_visible_to(ident, BOB, Place(platform="web", channel="shop-chat"))  # not the thread
        assert not store.image_visible_to(ident, BOB)
        assert not store.image_visible_to("u" + "e" * 31, ALICE, SHOP)  # unknown id
    finally:
        store.close()


def test_generated_images_are_owned_by_who_asked(cfg: Settings) -> None:
    store = Store(cfg.data_dir)
    try:
        now = time.time()
        store.execute(
            "INSERT INTO jobs (id, status, spec, platform, user_id, server_id, channel, thread, created) "
            "VALUES ('j1', 'done', '{}', 'discord', '4242', 'guild-7', 'c-100', 't-5', ?)",
            (now,),
        )
        gid = "0123456789abcdef0123456789abcdef"
        store.execute(
            "INSERT INTO images (id, job_id, idx, path, recipe, created) VALUES (?, 'j1', 0, 'p', '{}', ?)", (gid, now)
        )
        owner = store.image_owner(gid)
        assert owner is not None and owner.kind == "generated"
        assert owner.owner == UserRef(platform="discord", user="4242", server="guild-7").key
        assert owner.place == "discord:c-100:t-5"
    finally:
        store.close()


def test_upload_loses_exif_gps_and_icc_and_keeps_its_orientation(cfg: Settings) -> None:
    data = gps_jpeg()
    assert b"PhoneMaker" in data and b"Pocket Cam" in data
    img = load_upload(data, cfg)
    assert img.size == (30, 60)  # orientation 6 applied: a portrait now
    assert img.info == {} and len(img.getexif()) == 0
    assert img.getpixel((15, 5))[0] < 60 and img.getpixel((15, 55))[0] > 150  # the dark half is on top

    store = Store(cfg.data_dir)
    try:
        ident = store_upload(store, data, cfg, owner=ALICE, place=SHOP)
        stored = store.image_file(ident).read_bytes()
    finally:
        store.close()
    for marker in (b"PhoneMaker", b"Pocket Cam", b"eXIf", b"iCCP", b"tEXt", b"zTXt", b"iTXt", b"Exif"):
        assert marker not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.format == "PNG" and im.size == (30, 60)
        assert len(im.getexif()) == 0 and "icc_profile" not in im.info


def test_store_cleans_whatever_it_is_given(cfg: Settings) -> None:
    """put_upload re-encodes a photo with metadata even when a caller skipped load_upload."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 48.8582 N, 2.2945 E")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 255, 128)).save(buf, "PNG", pnginfo=info, exif=exif)
    store = Store(cfg.data_dir)
    try:
        from_png = store.image_file(store.put_upload(buf.getvalue())).read_bytes()
        from_jpeg = store.image_file(store.put_upload(gps_jpeg(orientation=1))).read_bytes()
    finally:
        store.close()
    assert b"48.8582" not in from_png and b"PhoneMaker" not in from_png
    assert Image.open(io.BytesIO(from_png)).getpixel((3, 3)) == (0, 0, 255, 128)  # transparency kept
    assert b"PhoneMaker" not in from_jpeg and Image.open(io.BytesIO(from_jpeg)).format == "PNG"
    clean = clean_png(from_png)
    assert clean == from_png  # already clean: stored as is


def test_import_image_file_is_the_one_way_in_for_a_path(cfg: Settings, tmp_path: Path) -> None:
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(gps_jpeg())
    store = Store(cfg.data_dir)
    try:
        ident = import_image_file(store, photo, cfg, owner=ALICE, place=SHOP)
        assert is_image_id(ident) and b"PhoneMaker" not in store.image_bytes(ident)
        with pytest.raises(InputImageError) as err:
            import_image_file(store, tmp_path / "nope.png", cfg, owner=ALICE, place=SHOP)
        assert "No such file" in str(err.value)
        (tmp_path / "notes.png").write_text("not an image")
        with pytest.raises(InputImageError):
            import_image_file(store, tmp_path / "notes.png", cfg, owner=ALICE, place=SHOP)
    finally:
        store.close()


def test_cli_init_image_is_stored_first(tmp_path: Path, tiny_model_dir: Path) -> None:
    from chatcanvas.generation.metadata import recipe_from_png
    from tests.cli_runner import chatcanvas

    (tmp_path / "phone.jpg").write_bytes(gps_jpeg((48, 40), orientation=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCANVAS_", "OPENAI_"))}
    env.update({"HF_HUB_OFFLINE": "1", "CHATCANVAS_DATA_DIR": str(tmp_path / "data")})
    p = chatcanvas(tmp_path, "generate", "a mug", "--model", str(tiny_model_dir),
                   "--init-image", "phone.jpg", "--strength", "0.5", "--steps", "2", "-o", "out.png", env=env)
    assert p.returncode == 0, p.stderr
    recipe = recipe_from_png((tmp_path / "out.png").read_bytes())
    assert recipe.init_image is not None and is_image_id(recipe.init_image) and recipe.init_image.startswith("u")
    stored = Store(tmp_path / "data")
    try:
        assert b"PhoneMaker" not in stored.image_bytes(recipe.init_image)
        owner = stored.image_owner(recipe.init_image)
        assert owner is not None and owner.owner.startswith("cli:") and owner.place == "cli:terminal:"
    finally:
        stored.close()
