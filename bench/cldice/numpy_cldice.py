"""Soft clDice (Shit et al. 2021) blended with soft Dice, value and gradient with respect to
the logits, in NumPy: the formula lossd serves as `cldice` (docs/losses.md §15.3), written the
way a NumPy user would, vectorised over the batch's (sample, class) maps.

    cldice(logits [N][C][H][W], labels [N][H][W], iterations=3, alpha=0.5, smooth=1,
           include_background=False) -> (per-sample values [N], gradient of their mean)

Soft skeleton: erosion = min over the plus-shaped window, dilation = max over the 3x3
window (both clipped at the border), open = dilate(erode); skel = relu(x - open(x)), then
`iterations` rounds of x = erode(x), delta = relu(x - open(x)), skel += relu(delta - skel*delta).
The backward pass routes each min/max's gradient to its winner (np.argmin/np.argmax over
the stacked window, first on ties) and scatters with np.bincount.
"""
import numpy as np

PLUS = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
FULL = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]


def _pool(x, offsets, op, track):
    """Min/max of x [B, H, W] over the window; with track, also the flat source index."""
    B, H, W = x.shape
    fill = np.inf if op == "min" else -np.inf
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=fill)
    views = np.stack([xp[:, 1 + a:1 + a + H, 1 + b:1 + b + W] for a, b in offsets])
    if not track:
        return (views.min(0) if op == "min" else views.max(0)), None
    k = (np.argmin if op == "min" else np.argmax)(views, axis=0)
    out = np.take_along_axis(views, k[None], 0)[0]
    da = np.array([a for a, _ in offsets])[k]
    db = np.array([b for _, b in offsets])[k]
    bi, hi, wi = np.indices((B, H, W))
    src = (bi * H + hi + da) * W + wi + db
    return out, src


def _scatter(g, src):
    return np.bincount(src.ravel(), weights=g.ravel(), minlength=g.size).reshape(g.shape)


def soft_skeleton(img, iterations, track=False):
    x = img
    e, se = _pool(x, PLUS, "min", track)
    o, so = _pool(e, FULL, "max", track)
    first = (se, so)  # the initial step's winners: erode(x0), dilate(erode(x0))
    dd0 = x - o
    skel = np.maximum(dd0, 0.0)
    steps = []
    for _ in range(iterations):
        xn, sx = e, se
        e, se = _pool(xn, PLUS, "min", track)
        o, so = _pool(e, FULL, "max", track)
        dd = xn - o
        delta = np.maximum(dd, 0.0)
        t = delta - skel * delta
        if track:
            steps.append((sx, se, so, dd, delta, skel, t))
        skel = skel + np.maximum(t, 0.0)

    def backward(gS):
        g_skel, g_next = gS.copy(), np.zeros_like(img)
        for sx, se, so, dd, delta, sk, t in reversed(steps):
            gt = g_skel * (t > 0)
            g_delta = gt * (1.0 - sk)
            g_skel = g_skel - gt * delta
            g_dd = g_delta * (dd > 0)
            g_x = g_next + g_dd - _scatter(_scatter(g_dd, so), se)
            g_next = _scatter(g_x, sx)
        g0 = g_skel * (dd0 > 0)
        return g_next + g0 - _scatter(_scatter(g0, first[1]), first[0])
    return skel, backward


def cldice(logits, labels, iterations=3, alpha=0.5, smooth=1.0, include_background=False):
    z = np.asarray(logits, float)
    N, C, H, W = z.shape
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (labels[:, None] == np.arange(C)[None, :, None, None]).astype(float)
    eps = smooth
    ax = (2, 3)
    I, Sp, Sg = (p * g).sum(ax), p.sum(ax), g.sum(ax)
    den = Sp + Sg + eps
    D = (2 * I + eps) / den
    dice = 1 - D
    ddice = -(2 * g - D[..., None, None]) / den[..., None, None]
    skp, back = soft_skeleton(p.reshape(N * C, H, W), iterations, track=True)
    skg, _ = soft_skeleton(g.reshape(N * C, H, W), iterations)
    skp, skg = skp.reshape(z.shape), skg.reshape(z.shape)
    SSp, SSg = skp.sum(ax), skg.sum(ax)
    Tp = ((skp * g).sum(ax) + eps) / (SSp + eps)
    Ts = ((skg * p).sum(ax) + eps) / (SSg + eps)
    Hm = 2 * Tp * Ts / (Tp + Ts)
    Lc = (1 - alpha) * dice + alpha * (1 - Hm)
    ex = lambda v: v[..., None, None]  # noqa: E731
    dTp = ex(2 * Ts ** 2 / (Tp + Ts) ** 2) * (g - ex(Tp)) / ex(SSp + eps)
    through = back(dTp.reshape(N * C, H, W)).reshape(z.shape)
    dLdp = (1 - alpha) * ddice - alpha * (through + ex(2 * Tp ** 2 / (Tp + Ts) ** 2) * skg / ex(SSg + eps))
    first = 0 if include_background else 1
    kept = C - first
    values = Lc[:, first:].mean(1)
    mask = np.zeros(C)
    mask[first:] = 1.0 / kept
    gp = dLdp * mask[None, :, None, None] / N
    grad = p * (gp - (p * gp).sum(1, keepdims=True))
    return values, grad
