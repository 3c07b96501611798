"""Event encoder: a transformer over object tokens with a pairwise-physics attention bias.

Each token is embedded from its continuous features plus a learned object-type
embedding. Following the Particle Transformer, the pairwise Lorentz-invariant
features ``ln ΔR, ln kT, ln z, ln m²`` of every object pair (computed without
float32 cancellation, :func:`pair_features`) go through a small MLP to
one bias per attention head, added to the attention logits of every block. Padding
is masked out of every attention, and there are no positional encodings, so the
encoder is permutation-equivariant per token and the pooled event embedding (class
token or attention pooling) is permutation-invariant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from jetfm_coffea.model.config import PAIR_VERSION, ModelConfig
from jetfm_coffea.model.packing import length_groups

__all__ = [
    "MASK_VALUE",
    "EncoderOutput",
    "EventEncoder",
    "PackedBlock",
    "TransformerBlock",
    "pair_features",
]

#: Logit added for masked keys: finite, so an event without tokens gives no NaN.
MASK_VALUE = -1.0e9

_EPS = 1.0e-4  # clamp of the arguments of the pair-feature logarithms


@dataclass
class EncoderOutput:
    """Per-token outputs ``[B, T, D]`` (padding rows are meaningless) and the event embedding."""

    tokens: torch.Tensor
    embedding: torch.Tensor
    mask: torch.Tensor


def pair_features(
    tokens: torch.Tensor, feature_names: list[str], version: int = PAIR_VERSION
) -> torch.Tensor:
    """ParT-style pair features ``[B, T, T, 4]``: ln ΔR, ln kT, ln z, ln m², in float32.

    Kinematics are recovered from the token features (pT = exp(log_pt), η, the unit
    vector (cos φ, sin φ), the mass m = expm1(log_m), or from E = exp(log_e) when the
    tokens carry no log_m). ``version`` is the definition the model was trained with
    (:attr:`ModelConfig.pair_version`):

    * 2 (:func:`_pair_kinematics`): every quantity is a sum of non-negative terms, so
      near-collinear and near-massless pairs lose no precision and every backend (torch
      eager, TorchScript, torch.export, ONNX) gives the same features to rounding:
      ``Δφ = 2 atan2(|u1 - u2|, |u1 + u2|)`` and, with ``P = pT cosh η = |p|`` and
      ``E² = P² + m²``,
      ``m² = m1² + m2² + 2 (m1² P2² + m2² P1² + m1² m2²) / (E1 E2 + P1 P2)
      + 2 pT1 pT2 (2 sinh²(Δη/2) + |u1 - u2|² / 2)``
      (``= m1² + m2² + 2 (E1 E2 - p1·p2)``).
    * 1 (legacy): Δφ from atan2 of each object's φ and ``m² = (E1 + E2)² - |p1 + p2|²``,
      which cancels in float32 (runs written before version 2 keep it).
    """
    idx = {name: i for i, name in enumerate(feature_names)}
    x = tokens.float()
    pt = torch.exp(x[..., idx["log_pt"]])
    if version == 1:
        dr, m2 = _legacy_pair_kinematics(x, idx, pt)
    elif version == 2:
        dr, m2 = _pair_kinematics(x, idx, pt)
    else:
        raise ValueError(f"unknown pair-feature version {version}; known: 1, 2")
    ptmin = torch.minimum(pt[:, :, None], pt[:, None, :])
    ptsum = pt[:, :, None] + pt[:, None, :]
    feats = torch.stack(
        [
            torch.log(dr.clamp_min(_EPS)),
            torch.log((ptmin * dr).clamp_min(_EPS)),
            torch.log((ptmin / ptsum.clamp_min(_EPS)).clamp_min(_EPS)),
            torch.log(m2.clamp_min(_EPS)),
        ],
        dim=-1,
    )
    return feats * 0.25  # keep the MLP input O(1)


def _pair_kinematics(
    x: torch.Tensor, idx: dict[str, int], pt: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """ΔR and m² of every pair without cancellation (pair-feature version 2)."""
    eta = x[..., idx["eta"]]
    sin, cos = x[..., idx["sin_phi"]], x[..., idx["cos_phi"]]
    dsin, dcos = sin[:, :, None] - sin[:, None, :], cos[:, :, None] - cos[:, None, :]
    ssin, scos = sin[:, :, None] + sin[:, None, :], cos[:, :, None] + cos[:, None, :]
    chord2 = dsin * dsin + dcos * dcos  # |u1 - u2|² = 2 - 2 cos Δφ
    dphi = 2.0 * torch.atan2(torch.sqrt(chord2), torch.sqrt(ssin * ssin + scos * scos))
    deta = eta[:, :, None] - eta[:, None, :]
    dr = torch.sqrt(deta * deta + dphi * dphi)
    p = pt * torch.cosh(eta)
    if "log_m" in idx:
        half = 0.5 * x[..., idx["log_m"]]
        m = 2.0 * torch.sinh(half) * torch.exp(half)  # expm1(log_m) = |m|, accurate for small m
        msq = m * m
    else:
        e = torch.exp(x[..., idx["log_e"]])
        msq = ((e - p) * (e + p)).clamp_min(0.0)
    e = torch.sqrt(p * p + msq)
    m1, m2_, p1, p2 = msq[:, :, None], msq[:, None, :], p[:, :, None], p[:, None, :]
    # E1 E2 - P1 P2 = (E1² E2² - P1² P2²) / (E1 E2 + P1 P2), its numerator expanded
    energy_term = (m1 * p2 * p2 + m2_ * p1 * p1 + m1 * m2_) / (
        e[:, :, None] * e[:, None, :] + p1 * p2
    )
    half_sinh = torch.sinh(0.5 * deta)
    angle_term = pt[:, :, None] * pt[:, None, :] * (2.0 * half_sinh * half_sinh + 0.5 * chord2)
    m2 = m1 + m2_ + 2.0 * energy_term + 2.0 * angle_term
    return dr, m2


def _legacy_pair_kinematics(
    x: torch.Tensor, idx: dict[str, int], pt: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """ΔR and m² of every pair as version 1 computed them (m² cancels in float32)."""
    eta = x[..., idx["eta"]]
    sin, cos = x[..., idx["sin_phi"]], x[..., idx["cos_phi"]]
    phi = torch.atan2(sin, cos)
    e = torch.exp(x[..., idx["log_e"]])
    px, py, pz = pt * cos, pt * sin, pt * torch.sinh(eta)
    deta = eta[:, :, None] - eta[:, None, :]
    dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + math.pi, 2 * math.pi) - math.pi
    dr = torch.sqrt(deta * deta + dphi * dphi)
    esum = e[:, :, None] + e[:, None, :]
    psum2 = (
        (px[:, :, None] + px[:, None, :]) ** 2
        + (py[:, :, None] + py[:, None, :]) ** 2
        + (pz[:, :, None] + pz[:, None, :]) ** 2
    )
    return dr, esum * esum - psum2


class TransformerBlock(nn.Module):
    """Pre-norm self-attention block taking an additive attention bias ``[B, H, T, T]``."""

    def __init__(self, dim: int, heads: int, ffn_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * ffn_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        x = x + self.drop(self.proj(self._attention(self.qkv(self.norm1(x)), b, t, bias)))
        return x + self.drop(self.ffn(self.norm2(x)))

    def forward_packed(self, x: torch.Tensor, blocks: list[PackedBlock]) -> torch.Tensor:
        """:meth:`forward` on packed rows ``x [N, D]``: every row-wise layer (norms,
        projections, feed-forward) runs once on all rows, attention once per block of
        equal-length sequences (``blocks``: rows ``start:stop``, ``n`` sequences of
        ``length`` rows, their bias)."""
        d = x.shape[1]
        qkv = self.qkv(self.norm1(x))
        parts = [
            self._attention(qkv[k.start : k.stop], k.n, k.length, k.bias).reshape(-1, d)
            for k in blocks
        ]
        attn = parts[0] if len(parts) == 1 else torch.cat(parts)
        x = x + self.drop(self.proj(attn))
        return x + self.drop(self.ffn(self.norm2(x)))

    def _attention(
        self, qkv: torch.Tensor, n: int, length: int, bias: torch.Tensor
    ) -> torch.Tensor:
        """Multi-head attention of ``n`` sequences of ``length`` rows from their
        ``q, k, v`` projections; ``[n, length, D]``."""
        d = qkv.shape[-1] // 3
        q, k, v = qkv.reshape(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=bias if bias.dtype == q.dtype else bias.to(q.dtype),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return attn.transpose(1, 2).reshape(n, length, d)


@dataclass
class PackedBlock:
    """Rows ``start:stop`` of a packed batch: ``n`` sequences of ``length`` rows each
    (events of one token width, class token included), their attention ``bias``
    ``[n, H, length, length]`` and their events' positions ``index`` in the batch."""

    start: int
    stop: int
    n: int
    length: int
    bias: torch.Tensor
    index: torch.Tensor


class EventEncoder(nn.Module):
    """Transformer event encoder: ``(tokens [B,T,F], mask [B,T]) -> EncoderOutput``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        names = config.feature_names
        self.type_index = names.index("type_id")
        self.cont_index = [i for i, n in enumerate(names) if n in config.continuous_features]
        d = config.dim
        self.register_buffer(
            "cont_idx", torch.tensor(self.cont_index, dtype=torch.long), persistent=False
        )
        self.embed = nn.Sequential(nn.Linear(len(self.cont_index), d), nn.GELU(), nn.Linear(d, d))
        self.type_embed = nn.Embedding(config.n_types, d)
        self.mask_token = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_token, std=0.02)
        if config.pair_features:
            self.pair_mlp = nn.Sequential(
                nn.Linear(4, config.pair_hidden),
                nn.GELU(),
                nn.Linear(config.pair_hidden, config.heads),
            )
        else:
            self.pair_mlp = None
        if config.pooling == "cls":
            self.cls_token = nn.Parameter(torch.zeros(d))
            nn.init.normal_(self.cls_token, std=0.02)
        else:
            self.pool_query = nn.Parameter(torch.zeros(d))
            nn.init.normal_(self.pool_query, std=0.02)
            self.pool_attn = nn.MultiheadAttention(d, config.heads, batch_first=True)
        self.blocks = nn.ModuleList(
            TransformerBlock(d, config.heads, config.ffn_ratio, config.dropout)
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(d)

    @property
    def dim(self) -> int:
        return self.config.dim

    def type_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """Integer object-type id of each token, clamped into the vocabulary."""
        t = torch.round(tokens[..., self.type_index]).long()
        return t.clamp(0, self.config.n_types - 1)

    def _bias(
        self, tokens: torch.Tensor, mask: torch.Tensor, hide: torch.Tensor | None
    ) -> torch.Tensor:
        b, t, _ = tokens.shape
        h = self.config.heads
        if self.pair_mlp is not None:
            with torch.autocast(tokens.device.type, enabled=False):
                feats = pair_features(tokens, self.config.feature_names, self.config.pair_version)
                known = mask if hide is None else mask & ~hide
                pair_ok = known[:, :, None] & known[:, None, :]
                bias = self.pair_mlp(feats).permute(0, 3, 1, 2)
                # where(), not a product: padding (sin = cos = 0) has no defined phi, and
                # exporters (ONNX's atan2) may give NaN there, which 0 * NaN would keep
                bias = torch.where(pair_ok[:, None], bias, 0.0)
        else:
            bias = tokens.new_zeros((b, h, t, t), dtype=torch.float32)
        keys = mask
        if self.config.pooling == "cls":
            bias = F.pad(bias, (1, 0, 1, 0))
            keys = F.pad(mask, (1, 0), value=True)
        # (a broadcast add measured as fast as masked_fill on the CPU: 196-226 vs 229-262 ms
        # for a 3072x8x24x24 bias; kept as the add the exporters already handle)
        key_bias = torch.zeros(keys.shape, dtype=bias.dtype, device=bias.device)
        key_bias = key_bias.masked_fill(~keys, MASK_VALUE)
        return bias + key_bias[:, None, None, :]

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, hide: torch.Tensor | None = None
    ) -> EncoderOutput:
        """Encode events.

        ``tokens`` ``[B, T, F]`` (float), ``mask`` ``[B, T]`` (True for real objects);
        ``hide`` ``[B, T]`` marks tokens replaced by the learned mask token (masked
        object modelling): their features, type and pair features are not seen.
        """
        mask = mask.bool()
        hide = None if hide is None else hide.bool() & mask
        x = self._embed_tokens(tokens, mask, hide)
        bias = self._bias(tokens, mask, hide)
        if torch.is_autocast_enabled(x.device.type):
            # cast once for all blocks (each block would otherwise convert it again)
            bias = bias.to(torch.get_autocast_dtype(x.device.type))
        if self.config.pooling == "cls":
            cls = self.cls_token.to(x.dtype).expand(x.shape[0], 1, -1)
            x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        if self.config.pooling == "cls":
            return EncoderOutput(tokens=x[:, 1:], embedding=x[:, 0], mask=mask)
        return EncoderOutput(tokens=x, embedding=self._pool(x, mask), mask=mask)

    def _embed_tokens(
        self, tokens: torch.Tensor, mask: torch.Tensor, hide: torch.Tensor | None
    ) -> torch.Tensor:
        """Token embeddings ``[..., D]`` of ``tokens [..., F]`` (any leading shape): hidden
        tokens replaced by the mask token, padding zeroed (``mask``, ``hide`` bool)."""
        x = self.embed(tokens[..., self.cont_idx]) + self.type_embed(self.type_ids(tokens))
        if hide is not None:
            x = torch.where(hide[..., None], self.mask_token.to(x.dtype), x)
        return x * mask[..., None].to(x.dtype)

    def _pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention pooling of ``x [B, T, D]`` over its valid tokens (0 for no token)."""
        query = self.pool_query.to(x.dtype).expand(x.shape[0], 1, -1)
        empty = ~mask.any(dim=1)
        key_mask = mask.clone()
        key_mask[empty, 0] = True  # keep softmax defined; the result is zeroed below
        pooled, _ = self.pool_attn(query, x, x, key_padding_mask=~key_mask, need_weights=False)
        return pooled[:, 0].masked_fill(empty[:, None], 0.0)

    def forward_grouped(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        hide: torch.Tensor | None = None,
        multiple: int = 1,
    ) -> EncoderOutput:
        """:meth:`forward` without the padding's cost (same result to rounding).

        Events are grouped by their length (the last valid slot + 1) rounded up to
        ``multiple`` (:func:`length_groups`; 1: exact lengths, no padding at all) and
        packed, group after group, into one matrix of rows: the embedding, norms,
        projections and feed-forward layers run once on all rows, attention and the
        pair bias once per group with only that group's token slots. The outputs are
        put back in the batch order; per-token outputs are zero beyond each group's width.
        """
        b, t, n_feat = tokens.shape
        mask = mask.bool()
        groups = length_groups(mask, multiple)
        if len(groups) <= 1:
            return self.forward(tokens, mask, hide)
        hide = None if hide is None else hide.bool() & mask
        cls = self.config.pooling == "cls"
        flat = torch.cat([tokens[idx, :w].reshape(-1, n_feat) for idx, w in groups])
        valid = torch.cat([mask[idx, :w].reshape(-1) for idx, w in groups])
        hidden = (
            None if hide is None else torch.cat([hide[idx, :w].reshape(-1) for idx, w in groups])
        )
        x = self._embed_tokens(flat, valid, hidden)
        cast = (
            torch.get_autocast_dtype(x.device.type)
            if torch.is_autocast_enabled(x.device.type)
            else None
        )
        rows, blocks, start, offset = [], [], 0, 0
        for idx, w in groups:
            n = len(idx)
            part = x[offset : offset + n * w].view(n, w, -1)
            offset += n * w
            if cls:
                part = torch.cat([self.cls_token.to(x.dtype).expand(n, 1, -1), part], dim=1)
            length = w + cls
            h = None if hide is None else hide[idx, :w]
            bias = self._bias(tokens[idx, :w], mask[idx, :w], h)
            rows.append(part.reshape(n * length, -1))
            blocks.append(
                PackedBlock(start, start + n * length, n, length,
                            bias if cast is None else bias.to(cast), idx)
            )  # fmt: skip
            start += n * length
        x = torch.cat(rows)
        for block in self.blocks:
            x = block.forward_packed(x, blocks)
        x = self.norm(x)
        toks, embs = [], []
        for k in blocks:
            part = x[k.start : k.stop].view(k.n, k.length, -1)
            if cls:
                part, emb = part[:, 1:], part[:, 0]
            else:
                emb = self._pool(part, mask[k.index, : k.length])
            toks.append(F.pad(part, (0, 0, 0, t - part.shape[1])))
            embs.append(emb)
        order = torch.cat([k.index for k in blocks])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(b, device=order.device)
        return EncoderOutput(
            tokens=torch.cat(toks)[inverse], embedding=torch.cat(embs)[inverse], mask=mask
        )
