"""Tested code under the book *How neural representations agree*.

One module per concern; chapters import what they need, e.g.::

    from helpers import alignment          # exact, batched alignment kernels
    from helpers.features import extract_vision_features

Modules:
    alignment   mutual-kNN, CKA, CKNNA, ... for all layer pairs at once, and the permutation null
    features    per-layer features from timm ViTs and Hugging Face models; pretrained text encoders
    cache       atomic on-disk cache shared by every chapter
    stats       bootstrap intervals and a Spearman permutation test, the one place chapters resample
    plotting    the book's one figure style
    run         the chapter runner (jupytext -> papermill at a scale)
"""
