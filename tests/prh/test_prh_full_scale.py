"""The `full` paths of the PRH-OOD chapter (book/prh_ood.py) and the random-images chapter
(book/random_images.py) on local fixtures: tiny saved timm ViTs,
an image folder (ImageNet-O layout), a WIT-style folder with metadata.jsonl and a tiny saved
Hugging Face text model. The whole notebook runs at scale="full" with the hub names swapped for
these folders, so the chapter's full-scale code path (helpers.prh.sources) is exercised offline."""
import json

import nbformat
import torch

from image_folders import write_image_folder


LABELS = ("jellyfish", "goose", "volcano")  # ImageNet-O-style class folders


def _tiny_text_model(folder):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = "a photo of the caption page jellyfish goose volcano shape on with and".split()
    vocab = folder / "vocab.txt"
    folder.mkdir(parents=True)
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words,
                                *map(str, range(40))]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(vocab))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _glued(nb, name):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                data = out["data"]
                return next(v for k, v in data.items() if k.endswith("text/plain"))
    raise KeyError(name)


def _tiny_vits(tmp_path):
    import timm

    from helpers.features import save_timm_model

    vits = []
    for i, dim in enumerate((32, 48, 32)):
        args = dict(img_size=32, patch_size=8, embed_dim=dim, depth=2 + i % 2, num_heads=2,
                    num_classes=0)
        torch.manual_seed(i)
        vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, **args)
        vits.append(str(save_timm_model(vit, tmp_path / f"vit{i}", model_args=args)))
    return vits


def test_prh_ood_full_scale_on_fixtures(tmp_path, monkeypatch):
    from helpers.run import execute_chapter

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vits = _tiny_vits(tmp_path)
    n = 24
    files = write_image_folder(tmp_path / "imagenet_o", n, LABELS)
    wit = tmp_path / "wit"
    wit.mkdir()
    with open(wit / "metadata.jsonl", "w") as fh:
        for i, f in enumerate(files):
            (wit / f"w{i}.png").write_bytes(f.read_bytes())
            fh.write(json.dumps({"file_name": f"w{i}.png",
                                 "text": [f"a shape on page {i}", "page"]}) + "\n")
    text = _tiny_text_model(tmp_path / "text")
    extra = dict(vit_models=vits, language_models=[str(text)], id_source=str(wit),
                 ood_source=str(tmp_path / "imagenet_o"),
                 n_eval=n, n_agree=n, topk=3, agree_ks=[3, 5], n_perm=3, n_perm_agree=2, n_boot=50,
                 n_init_controls=2, batch_size=8,
                 real_models=["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1",
                              "hed_vgg16"], real_n=32, real_input=48, real_perm=3,
                 real_agree_perm=3)  # four models: the agreement needs at least 3 pairs
    out = tmp_path / "prh_full.ipynb"
    result = execute_chapter("prh_ood", "full", extra=extra, output=out)
    assert result.ok, result.error
    nb = nbformat.read(out, as_version=4)
    for name in ("vv_id", "vv_ood", "vv_rand_id", "agree_blog_id", "agree_corr_ood"):
        assert torch.isfinite(torch.tensor(float(_glued(nb, name)))), name
    # the full path scored the pretrained ViTs and their random-init copies, not the shapes zoo
    text_out = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                       for c in nb.cells for o in c.get("outputs", []))
    assert "vit0" in text_out and "init-init" in text_out and "vit-supervised" not in text_out


def test_random_images_full_scale_on_fixtures(tmp_path, monkeypatch):
    from helpers.run import execute_chapter

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vits = _tiny_vits(tmp_path)
    write_image_folder(tmp_path / "photos", 24, LABELS)
    extra = dict(vit_models=vits, blend_images=str(tmp_path / "photos"), n_images=24,
                 families=["uniform", "collage"],
                 family_metrics=["mutual_knn"], topk=3, n_perm=5,
                 heatmap_configs=["mutual_knn@3", "mutual_knn@5", "cka"],
                 heatmap_perm=3, blend_levels=3, blend_metrics=["mutual_knn"], noise_seeds=2,
                 batch_size=8,
                 real_models=["efficientnet_lite0", "mobilenet_v2", "hed_vgg16"], real_n_images=28,
                 real_input_size=32, real_perm=199, real_max_perm=5, real_blend_levels=3,
                 agreement_perm=49, n_boot=100)  # floor 1/50 below alpha / 2
    out = tmp_path / "ri_full.ipynb"
    result = execute_chapter("random_images", "full", extra=extra, output=out)
    assert result.ok, result.error
    nb = nbformat.read(out, as_version=4)
    assert torch.isfinite(torch.tensor(float(_glued(nb, "ans_uniform_trained"))))


def test_prh_ood_full_scale_needs_models(tmp_path):
    from helpers.run import execute_chapter

    result = execute_chapter("prh_ood", "full", extra=dict(vit_models=[]),
                             output=tmp_path / "x.ipynb")
    assert not result.ok and "needs at least two vit_models" in result.error


def test_random_init_copy_and_param_count():
    import timm

    from helpers.prh import sources as ps

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8,
                            embed_dim=32, depth=2, num_heads=2, num_classes=0)
    ctrl = ps.random_init_copy(vit, seed=1)
    assert ps.param_count(ctrl) == ps.param_count(vit) == sum(p.numel() for p in vit.parameters())
    # fresh weights
    assert any(not torch.equal(a, b) for a, b in zip(vit.parameters(), ctrl.parameters()))
    assert ctrl.pretrained_cfg == vit.pretrained_cfg  # same preprocessing as the trained model
    again = ps.random_init_copy(vit, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(ctrl.parameters(), again.parameters()))  # seeded
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 3))
    assert not torch.equal(ps.random_init_copy(mlp).state_dict()["0.weight"],
                           mlp.state_dict()["0.weight"])


def test_pretrained_members_and_vit_family():
    from helpers.prh import sources as ps

    members = ps.pretrained_members(["vit_small_patch14_dinov2.lvd142m", "/tmp/models/vit0/"], 1)
    assert [m.name for m in members] == ["vit_small_patch14_dinov2.lvd142m", "vit0"]
    assert [m.steps for m in members] == [[0, 1], [1]]
    assert members[0].objective == "dinov2" and members[1].objective == "other"
    assert ps.vit_family("vit_large_patch14_clip_224.laion2b") == "clip"
