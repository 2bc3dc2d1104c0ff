"""Self-diffusion (Eq. 2): exactness of the fast solver and behaviour on simple images."""

import dataclasses

import numpy as np
import pytest

from c3seg.config import LabelConfig
from c3seg.diffusion import cam_threshold_labels, diffuse_labels, image_graph, lnet_cam_labels
from c3seg.diffusion.graph import adjacency, affinities, features, laplacian, region_means, weight_matrix
from c3seg.diffusion.solve import anchors, clamped, clamped_reference, ranking
from c3seg.diffusion.superpixels import relabel
from c3seg.diffusion.synthetic import make_scene


def _graph_and_anchors(seed=0, k=3):
    scene = make_scene(np.random.default_rng(seed), k, h=120, w=160)
    cfg = LabelConfig(n_segments=150)
    g = image_graph(scene.image, scene.m, scene.cams, cfg)
    w = weight_matrix(g.n, g.edges, affinities(features(g), g.edges, cfg.sigma))
    seeds, bg = anchors(g.cams, g.m, dataclasses.replace(cfg, bg_fg_threshold=0.3, bg_cam_threshold=0.3))
    values = np.zeros((g.n, k))
    values[seeds >= 0, seeds[seeds >= 0]] = 1
    return w, laplacian(w), (seeds >= 0) | bg, values


def test_laplace_equation_on_free_nodes_and_clamps_on_fixed():
    w, lap, fixed, values = _graph_and_anchors()
    assert fixed.any() and (~fixed).any()
    q = clamped(lap, fixed, values)
    np.testing.assert_allclose(q[fixed], values[fixed], atol=0)
    np.testing.assert_allclose((lap @ q)[~fixed], 0, atol=1e-9)  # harmonic: (L q)_free = 0
    assert q.min() >= -1e-9 and q.max() <= 1 + 1e-9  # maximum principle


def test_fast_path_equals_reference_solver():
    for seed in range(3):
        _, lap, fixed, values = _graph_and_anchors(seed)
        np.testing.assert_allclose(
            clamped(lap, fixed, values), clamped_reference(lap, fixed, values), atol=1e-6
        )


def test_ranking_solves_its_linear_system():
    w, _, _, values = _graph_and_anchors()
    q = ranking(w, values, alpha=0.9)
    d = np.asarray(w.sum(axis=1)).ravel()
    raw = np.linalg.solve(np.diag(d) - 0.9 * w.toarray(), values)
    np.testing.assert_allclose(q, raw / raw.max(axis=0), atol=1e-8)


def test_adjacency_and_means_are_exact():
    sp = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]])
    assert adjacency(sp, 4).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    means = region_means(sp, 4, np.arange(9, dtype=float).reshape(1, 3, 3))
    np.testing.assert_allclose(means[:, 0], [0.5, 3.5, 13 / 3, 7.5])
    assert relabel(np.array([[0, 5], [5, 7]]))[1] == 3


@pytest.mark.parametrize("method", ["clamped", "ranking"])
def test_two_region_image_seeded_region_fills(method):
    h, w = 90, 120
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :60] = (200, 40, 40)
    image[:, 60:] = (40, 160, 40)
    image = np.clip(image + np.random.default_rng(0).normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    m = np.zeros((h, w), np.float32)
    m[:, :60] = 0.9
    cams = np.zeros((1, h, w), np.float32)
    cams[0, 40:50, 20:30] = 1.0  # a small seed inside the left region
    cfg = LabelConfig(method=method, n_segments=60, seed_threshold=0.5, min_q=0.5)
    label = diffuse_labels(image, m, cams, [7], cfg)
    assert (label[:, :55] == 7).mean() > 0.95
    assert (label[:, 65:] == 0).mean() > 0.95


def test_baselines():
    m = np.array([[0.9, 0.1]])
    cams = np.array([[[0.8, 0.8]], [[0.2, 0.1]]])
    assert lnet_cam_labels(m, cams, [3, 5], 0.5).tolist() == [[3, 0]]
    assert cam_threshold_labels(cams, [3, 5], 0.9).tolist() == [[0, 0]]
    assert cam_threshold_labels(cams, [3, 5], 0.5).tolist() == [[3, 3]]


@pytest.mark.parametrize("backend", ["fast", "opencv"])
def test_fast_and_opencv_backends_label_the_objects(backend, monkeypatch, caplog):
    import importlib

    import cv2

    sp_mod = importlib.import_module("c3seg.diffusion.superpixels")  # the package exports a function so named

    ran = []  # which superpixel functions ran, in order

    def spy(name, real):
        return lambda *args: ran.append(name) or real(*args)

    for name in ("slic", "fast", "opencv"):
        monkeypatch.setattr(sp_mod, f"_{name}", spy(name, getattr(sp_mod, f"_{name}")))
    monkeypatch.setattr(sp_mod, "_warned", set())  # the fallback's warning, as in a fresh process
    scene = make_scene(np.random.default_rng(1), 2, h=120, w=160)
    cfg = LabelConfig(superpixels=backend, n_segments=100)
    label = diffuse_labels(scene.image, scene.m, scene.cams, scene.class_ids, cfg)
    if backend == "fast":
        assert ran == ["fast", "slic"]  # SLIC at half resolution
    elif hasattr(cv2, "ximgproc"):
        assert ran == ["opencv"]
    else:  # no opencv-contrib: the fast backend, and a warning that says so
        assert ran == ["opencv", "fast", "slic"] and "using the 'fast' backend" in caplog.text
    assert label.shape == (120, 160) and set(np.unique(label)) <= {0, *scene.class_ids}
    for c in scene.class_ids:  # each object labelled with its class, where it is
        iou = ((label == c) & (scene.gt == c)).sum() / ((label == c) | (scene.gt == c)).sum()
        assert iou > 0.7, (c, iou)
    assert ((label == 0) == (scene.gt == 0)).mean() > 0.95


def test_ignore_uncertain_paints_void_only_when_asked():
    scene = make_scene(np.random.default_rng(3), 3)
    cfg = LabelConfig(n_segments=200, bg_fg_threshold=0.05, bg_cam_threshold=0.05)
    plain = diffuse_labels(scene.image, scene.m, scene.cams, scene.class_ids, cfg)
    void = diffuse_labels(
        scene.image, scene.m, scene.cams, scene.class_ids, dataclasses.replace(cfg, ignore_uncertain=True)
    )
    assert 255 not in plain and 255 in void
    assert np.array_equal(plain[void != 255], void[void != 255])  # only background turns void
    assert (plain[void == 255] == 0).all()


def test_calibration_breaks_near_ties_by_the_same_solve_without_m():
    from c3seg.diffusion.calibrate import CAM_GRID, candidates, choose

    cands = candidates("ranking")

    def conf(e):  # two classes; more e, lower mIoU
        return np.array([[100, 0], [e, 100 - e]])

    total = np.stack([conf(50)] * (len(cands) + len(CAM_GRID)))
    with_m = [i for i, (m, u, _) in enumerate(cands) if m == "ranking" and u]
    a, b = with_m[0], with_m[-1]  # different sigma / min_q
    assert cands[a][2]["sigma"] != cands[b][2]["sigma"]
    total[a], total[b] = conf(10), conf(11)  # a best, b 0.9 points behind

    def no_m_of(i):
        keys = ("sigma", "seed_threshold", "bg_fg_threshold", "bg_cam_threshold", "min_q")
        p = cands[i][2]
        return next(j for j, (m, u, q) in enumerate(cands) if not u and all(q[k] == p[k] for k in keys))

    total[no_m_of(a)], total[no_m_of(b)] = conf(40), conf(20)  # b holds up far better without M
    chosen = choose(total, "ranking", 1)["sources"]["diffusion"]["params"]
    assert chosen == cands[b][2]
    strict = choose(total, "ranking", 1, tolerance=0.1)["sources"]["diffusion"]["params"]
    assert strict == cands[a][2]
    assert choose(total, "ranking", 1)["sources"]["diffusion-no-m"]["params"] == cands[no_m_of(b)][2]


def test_diffusion_without_m_reads_no_m():
    """diffusion-no-m: the labels do not change when M changes (features, anchors, assignment)."""
    scene = make_scene(np.random.default_rng(4), 3, h=120, w=160)
    cfg = LabelConfig(n_segments=150, bg_fg_threshold=0.35, bg_cam_threshold=0.3, fg_gate=0.5)
    ids = scene.class_ids
    base = diffuse_labels(scene.image, scene.m, scene.cams, ids, cfg, use_m=False)
    for m in (np.zeros_like(scene.m), np.ones_like(scene.m), 1 - scene.m):
        np.testing.assert_array_equal(diffuse_labels(scene.image, m, scene.cams, ids, cfg, use_m=False), base)
    # ... while the method itself does read M
    assert (diffuse_labels(scene.image, 1 - scene.m, scene.cams, ids, cfg) != base).any()


def test_solves_are_defined_on_isolated_and_unanchored_superpixels():
    """A superpixel with no neighbour (tiny images, underflowing affinities) and, in the clamped
    solve, a component no anchor reaches used to make the factorization singular."""
    import scipy.sparse as sps

    from c3seg.diffusion.graph import laplacian
    from c3seg.diffusion.solve import clamped, ranking

    w = sps.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0.0]]))
    fixed = np.array([True, False, False, False])  # nodes 2-3: a component without an anchor
    values = np.array([[1.0], [0.0], [0.0], [0.0]])
    q = clamped(laplacian(w), fixed, values)
    assert np.allclose(q[:, 0], [1, 1, 0, 0], atol=1e-6)
    lonely = sps.csr_matrix((3, 3))  # one node, no edges at all
    r = ranking(lonely, np.eye(3)[:, :1], 0.99)
    assert np.isfinite(r).all() and r[0, 0] == 1


def test_superpixel_confusion_equals_the_integer_product():
    """The calibration's confusion (a float64 product, for speed) is the exact integer one: truth x
    prediction pixel counts, each superpixel's histogram added to the column of its label."""
    from c3seg.diffusion.calibrate import _confusion

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 20_000, size=(700, 17))  # up to 20,000 pixels a class in a superpixel
    pred = rng.integers(0, 17, size=700)
    expected = np.zeros((17, 17), dtype=np.int64)
    for s, p in enumerate(pred):
        expected[:, p] += counts[s]
    got = _confusion(pred, counts.T.astype(np.float64), 17)
    assert got.dtype == np.int64 and np.array_equal(got, expected)
    assert np.array_equal(got, counts.T @ np.eye(17, dtype=np.int64)[pred])
