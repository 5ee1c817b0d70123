"""Component banks whose C components run as one operation on a shared input.

In a stacked modular layer every component sees the same input, so C dense stacks become one
wide GEMM plus batched GEMMs, and C convolutions become one convolution with C times the filters
(exact: a convolution's output channels are independent). ``forward_one(c, x)`` uses component
c's slice of the fused weights, so the per-component path and the loop reference share
parameters with the fused path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sharewise.components.layer_bank import LayerBank, activation_fn
from sharewise.errors import ConfigError
from sharewise.components.usage import ParameterUse


class _SelectByLoop(LayerBank):
    fused = True  # forward_all is one fused op

    def forward_selected(self, x: Tensor, layer_of_task: Sequence[int]) -> Tensor:
        return torch.stack([self.forward_one(int(j), x[t]) for t, j in enumerate(layer_of_task)])


class MLPBank(_SelectByLoop):
    """C multi-layer perceptrons ``in -> hidden x (depth-1) -> out`` (App. A3: depth 3, 16 hidden).

    Weights per depth ``[C, in, out]``, Glorot-uniform (Keras' default, the authors used TF),
    zero biases. ``activation`` on hidden units, ``out_activation`` on the output.
    """

    def __init__(self, n_components: int, in_features: int, hidden: int, out_features: int,
                 depth: int = 3, activation: str = "relu", out_activation: str = "linear") -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"MLP component depth must be >= 1, but got {depth}")
        self.n_layers = n_components
        widths = [in_features] + [hidden] * (depth - 1) + [out_features]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:]):
            bound = math.sqrt(6.0 / (a + b))
            self.weights.append(nn.Parameter(torch.empty(n_components, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.zeros(n_components, b)))
        self._act, self._out_act = activation_fn(activation), activation_fn(out_activation)
        self.activation_names = (activation, out_activation)

    def export_layer(self, j: int) -> nn.Module:
        from sharewise.components.plain import Dense

        last = len(self.weights) - 1
        return nn.Sequential(*[Dense(w[j], b[j], self.activation_names[int(i == last)])
                               for i, (w, b) in enumerate(zip(self.weights, self.biases))])

    def layer_uses(self, layer_users: Tensor) -> list[ParameterUse]:
        return [ParameterUse(p, layer_users, 0) for p in [*self.weights, *self.biases]]

    def _act_at(self, i: int) -> object:
        return self._out_act if i == len(self.weights) - 1 else self._act

    def forward_one(self, j: int, x: Tensor) -> Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = self._act_at(i)(torch.addmm(b[j], x, w[j]))  # type: ignore[operator]
        return x  # [N, out]

    def forward_all(self, x: Tensor) -> Tensor:
        c, n = self.n_layers, x.shape[0]
        w0, b0 = self.weights[0], self.biases[0]
        h = torch.addmm(b0.reshape(-1), x, w0.transpose(0, 1).reshape(x.shape[1], -1))  # [N, C*h]
        h = self._act_at(0)(h.view(n, c, -1).transpose(0, 1))  # type: ignore[operator]  # [C, N, h]
        for i in range(1, len(self.weights)):
            h = self._act_at(i)(torch.baddbmm(self.biases[i].unsqueeze(1), h, self.weights[i]))  # type: ignore[operator]
        return h  # [C, N, out]


class ConvBank(_SelectByLoop):
    """C convolutions ``in -> out`` channels, k x k, followed by an activation (4-MNISTs: ReLU).

    ``impl='conv'``: one ``conv2d`` with C*out filters. ``impl='unfold'``: im2col + one matmul;
    in a modular layer (``forward_mixed``) the convolution, activation and per-task mix are one
    fused op in a batch-innermost layout (``sharewise.components.conv_mix``), measured faster
    than the conv path per 4-MNISTs layer and update; both are exact up to float rounding
    (tested). PyTorch's default Conv2d init per component (uniform +-1/sqrt(fan_in) for weights
    and biases).
    """

    def __init__(self, n_components: int, in_channels: int, out_channels: int, kernel_size: int,
                 padding: int = 0, activation: str = "relu", impl: str = "conv") -> None:
        super().__init__()
        if impl not in ("conv", "unfold"):
            raise ConfigError(f"ConvBank impl must be 'conv' or 'unfold', but got {impl!r}")
        self.n_layers, self.out_channels = n_components, out_channels
        self.kernel_size, self.padding, self.impl = kernel_size, padding, impl
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        shape = (n_components * out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))  # [C*o, i, k, k]
        self.bias = nn.Parameter(torch.empty(n_components * out_channels).uniform_(-bound, bound))
        self._act = activation_fn(activation)
        self.activation_name = activation

    def export_layer(self, j: int) -> nn.Module:
        from sharewise.components.plain import Activation

        o = self.out_channels
        conv = nn.Conv2d(self.weight.shape[1], o, self.kernel_size, padding=self.padding)
        with torch.no_grad():
            conv.weight.copy_(self.weight[j * o:(j + 1) * o])
            conv.bias.copy_(self.bias[j * o:(j + 1) * o])
        return nn.Sequential(conv, Activation(self.activation_name))

    def layer_uses(self, layer_users: Tensor) -> list[ParameterUse]:
        rows = layer_users.repeat_interleave(self.out_channels, dim=1)  # [T', C*o]: component c owns o filters
        return [ParameterUse(self.weight, rows, 0), ParameterUse(self.bias, rows, 0)]

    def _conv(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        if self.impl == "conv":
            return F.conv2d(x, w, b, padding=self.padding)
        n, _, h, wd = x.shape
        k, p = self.kernel_size, self.padding
        ho, wo = h + 2 * p - k + 1, wd + 2 * p - k + 1
        cols = F.unfold(x, k, padding=p)  # [N, i*k*k, Ho*Wo]
        y = torch.matmul(w.reshape(w.shape[0], -1), cols) + b.view(1, -1, 1)  # [N, o', Ho*Wo]
        return y.view(n, w.shape[0], ho, wo)

    def forward_one(self, j: int, x: Tensor) -> Tensor:
        o = self.out_channels
        return self._act(self._conv(x, self.weight[j * o:(j + 1) * o], self.bias[j * o:(j + 1) * o]))

    @property
    def mixes_tasks(self) -> bool:
        """True: a modular layer calls :meth:`forward_mixed` (``impl='unfold'`` with ReLU or linear)."""
        return self.impl == "unfold" and self.activation_name in ("relu", "linear")

    def forward_mixed(self, x: Tensor, w: Tensor, pool: int = 1) -> Tensor:
        """x ``[T', B, i, H, W]``, w ``[T', C]`` -> ``[T', B, o, H', W']``: sum_c w[t, c] f_c(x_t),
        im2col + one GEMM for every component and task (``sharewise.components.conv_mix``);
        ``pool`` > 1: then average-pooled ``pool`` x ``pool`` (stride ``pool``) in the same op."""
        from sharewise.components.conv_mix import conv_relu_mix

        return conv_relu_mix(x, self.weight, self.bias, w, self.padding, relu=self.activation_name == "relu",
                             pool=pool)

    @staticmethod
    def forward_chain(x: Tensor, banks: Sequence[ConvBank], ws: Sequence[Tensor], pools: Sequence[int]
                      ) -> Tensor | None:
        """Modular layers of these banks in a row (w ``[T', C]`` and a pooling size each) as one
        fused op; None where that cannot run (padding, autocast: then layer by layer)."""
        from sharewise.components.conv_mix import conv_mix_chain

        if any(b.padding for b in banks) or torch.is_autocast_enabled(x.device.type):
            return None
        return conv_mix_chain(x, [(b.weight, b.bias, w, b.activation_name == "relu", p)
                                  for b, w, p in zip(banks, ws, pools)])

    def forward_all(self, x: Tensor) -> Tensor:
        y = self._act(self._conv(x, self.weight, self.bias))  # [N, C*o, H', W']
        n = y.shape[0]
        return y.view(n, self.n_layers, self.out_channels, *y.shape[2:]).transpose(0, 1)  # [C, N, o, H', W']


class ConvNormBank(_SelectByLoop):
    """C convolutions ``channels -> channels`` (kernel ``kernels[c]``, 'same' padding, ``stride``),
    each followed by GroupNorm(``groups``) and ReLU: the components of the clusters network
    (Maziarz et al., Sec. V-C: 8 conv 3x3 + 8 conv 5x5 per layer).

    Components with the same kernel size run as one convolution with their filters side by side
    and one GroupNorm: GroupNorm over ``groups`` groups of each component's channels equals
    GroupNorm over ``n * groups`` groups of the concatenated channels (every group is a
    contiguous block of channels either way), so the fused path is exact (tested against
    per-component ``nn.Conv2d`` + ``nn.GroupNorm``). Why: the layer's 16 small convolutions and
    16 normalisations were 16 x 2 ops per step forward and back, at sizes where an op's fixed
    cost outweighs its arithmetic. Initialisation as ``nn.Conv2d``'s default per component
    (uniform +-1/sqrt(fan_in) for weights and biases), GroupNorm scale 1 and shift 0.
    Parameters per kernel size k (in order of first appearance): ``weight_k [n_k*ch, ch, k, k]``,
    ``bias_k``, ``norm_weight_k``, ``norm_bias_k [n_k*ch]``.
    """

    def __init__(self, kernels: Sequence[int], channels: int, stride: int = 1, groups: int = 2) -> None:
        super().__init__()
        if not kernels:
            raise ConfigError("a ConvNormBank needs at least one component (kernel size)")
        if any(int(k) < 1 or int(k) % 2 == 0 for k in kernels):
            raise ConfigError(f"'same' padding needs odd kernel sizes >= 1, but got kernels={list(kernels)}")
        if channels % groups:
            raise ConfigError(f"channels must be divisible by groups, but got channels={channels}, groups={groups}")
        self.kernels = [int(k) for k in kernels]
        self.n_layers, self.channels, self.stride, self.groups = len(self.kernels), channels, stride, groups
        self.sizes = list(dict.fromkeys(self.kernels))  # kernel sizes, in order of first appearance
        members = [[c for c, k in enumerate(self.kernels) if k == size] for size in self.sizes]
        self.members = members  # members[g]: the components of kernel-size group g, in order
        self._slot = {c: (g, i) for g, cs in enumerate(members) for i, c in enumerate(cs)}
        order = [c for cs in members for c in cs]  # fused output order -> component
        # fused output order -> component order; a non-persistent buffer so that it follows the module's
        # device (no copy per call) and stays out of checkpoints (it is derived from `kernels`)
        self._order: Tensor | None
        if order == list(range(self.n_layers)):
            self._order = None
        else:
            self.register_buffer("_order", torch.argsort(torch.tensor(order)), persistent=False)
        for size, cs in zip(self.sizes, members):
            bound = 1.0 / math.sqrt(channels * size * size)
            rows = len(cs) * channels
            w = torch.empty(rows, channels, size, size).uniform_(-bound, bound)
            setattr(self, f"weight_{size}", nn.Parameter(w))
            setattr(self, f"bias_{size}", nn.Parameter(torch.empty(rows).uniform_(-bound, bound)))
            setattr(self, f"norm_weight_{size}", nn.Parameter(torch.ones(rows)))
            setattr(self, f"norm_bias_{size}", nn.Parameter(torch.zeros(rows)))

    def _params(self, g: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        size = self.sizes[g]
        return (getattr(self, f"weight_{size}"), getattr(self, f"bias_{size}"),
                getattr(self, f"norm_weight_{size}"), getattr(self, f"norm_bias_{size}"))

    def _block(self, x: Tensor, g: int, lo: int, hi: int) -> Tensor:
        """Components ``lo:hi`` of group g (positions within the group) on x: ``[N, (hi-lo)*ch, H', W']``."""
        ch, size = self.channels, self.sizes[g]
        w, b, nw, nb = (p[lo * ch:hi * ch] for p in self._params(g))
        y = F.conv2d(x, w, b, stride=self.stride, padding=size // 2)
        return torch.relu(F.group_norm(y, (hi - lo) * self.groups, nw, nb))

    def forward_one(self, j: int, x: Tensor) -> Tensor:
        g, i = self._slot[int(j)]
        return self._block(x, g, i, i + 1)

    def forward_all(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        parts = []
        for g, cs in enumerate(self.members):
            y = self._block(x, g, 0, len(cs))  # [N, n_g*ch, H', W']
            parts.append(y.view(n, len(cs), self.channels, *y.shape[2:]).transpose(0, 1))
        out = torch.cat(parts) if len(parts) > 1 else parts[0].contiguous()  # [C, N, ch, H', W']
        return out if self._order is None else out.index_select(0, self._order)

    def layer_uses(self, layer_users: Tensor) -> list[ParameterUse]:
        uses = []
        for g, cs in enumerate(self.members):
            rows = layer_users[:, cs].repeat_interleave(self.channels, dim=1)  # component c owns ch filters
            uses += [ParameterUse(p, rows, 0) for p in self._params(g)]
        return uses

    def export_layer(self, j: int) -> nn.Module:
        """``nn.Sequential(Conv2d, nn.Sequential(GroupNorm, ReLU))``, component j's slices copied."""
        g, i = self._slot[int(j)]
        ch, size = self.channels, self.sizes[g]
        w, b, nw, nb = (p[i * ch:(i + 1) * ch] for p in self._params(g))
        like = {"dtype": w.dtype, "device": w.device}
        conv = nn.Conv2d(ch, ch, size, stride=self.stride, padding=size // 2, **like)
        norm = nn.GroupNorm(self.groups, ch, **like)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
            norm.weight.copy_(nw)
            norm.bias.copy_(nb)
        return nn.Sequential(conv, nn.Sequential(norm, nn.ReLU()))

    def load_layer(self, j: int, state: Mapping[str, Tensor], k: int) -> None:
        """Component j := component k of a bank built with the same kernels (its ``state_dict()``)."""
        (g, i), (g_src, i_src) = self._slot[int(j)], self._slot[int(k)]
        if g != g_src:
            raise ConfigError(f"cannot copy component {k} (kernel {self.kernels[k]}) into component {j} "
                              f"(kernel {self.kernels[j]}): the kernel sizes differ")
        ch, size = self.channels, self.sizes[g]
        with torch.no_grad():
            for name in ("weight", "bias", "norm_weight", "norm_bias"):
                src = state[f"{name}_{size}"][i_src * ch:(i_src + 1) * ch]
                getattr(self, f"{name}_{size}")[i * ch:(i + 1) * ch].copy_(src)

    def extra_repr(self) -> str:
        return f"kernels={self.kernels}, channels={self.channels}, stride={self.stride}, groups={self.groups}"
