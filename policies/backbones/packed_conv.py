"""1-D convolutions that run CPU inference as one oneDNN matrix product on weights packed once.

At batch 1 a temporal UNet is bound by reading its weights (Diffusion Policy's default UNet holds 254 MB of them,
read once per sampling step). PyTorch's own CPU path for a 1-D convolution on a short sequence unrolls the input
and multiplies it by the weights in their stored layout, which streams them at about half the machine's memory
bandwidth. :class:`PackedConv1d` and :class:`PackedConvTranspose1d` are drop-in subclasses of ``nn.Conv1d`` and
``nn.ConvTranspose1d`` (same parameters, same ``state_dict``) that, when no gradient is wanted and the input is a
float32 CPU tensor, reorder the weights once into oneDNN's blocked layout (kept until the weights change) and run
the convolution as that product; every other call (training, CUDA, ``torch.compile``, other dtypes) runs the
parent's ``forward`` unchanged. Outputs equal the parent's within float32 rounding.

:func:`set_cpu_packing` turns the packed path off (or on) for every such convolution in a module, e.g. to time
the plain path next to it.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


@functools.cache
def cpu_packing_available() -> bool:
    """Whether this torch build has oneDNN's packed linear operators (x86 and arm64 builds do)."""
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


class _PackedWeights:
    """Packing shared by both convolutions: ``cpu_packing`` switch, the cached packed matrix, the guard."""

    cpu_packing: bool = True
    """Use the packed path where it applies (see the module docstring); False always runs the parent's path."""

    def _packs(self, x: torch.Tensor) -> bool:
        weight = self.weight
        return (
            self.cpu_packing
            and not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and x.dim() == 3
            and not weight.is_inference()  # inference tensors keep no version counter: a change would go unseen
            and self.groups == 1
            and self.dilation == (1,)
            and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
            and not torch.compiler.is_compiling()
            and cpu_packing_available()
        )

    def _packed(self, matrix, rows: int) -> torch.Tensor:
        """``matrix()`` (out_features, in_features) in oneDNN's layout, repacked when the weights changed."""
        weight = self.weight
        key = (weight.data_ptr(), weight._version, rows)
        cached = getattr(self, "_packed_cache", None)
        if cached is None or cached[0] != key:
            # the cache holds the packed weights' source too: while it is alive its address cannot be handed to
            # replacement weights (``weight.data = new``), so a new address always means new weights
            packed = torch.ops.mkldnn._reorder_linear_weight(matrix().contiguous(), rows)
            cached = (key, packed, weight.detach())
            self._packed_cache = cached
        return cached[1]

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .half(): the cached matrix is stale
        self._packed_cache = None
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self):  # deepcopy and the like: the packed matrix is rebuilt on first use
        state = dict(super().__getstate__())  # a copy: the default state is the module's own __dict__
        state.pop("_packed_cache", None)
        return state


def _linear(cols: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(cols, packed, bias, "none", [], "")


class PackedConv1d(_PackedWeights, nn.Conv1d):
    """``nn.Conv1d`` whose CPU inference is an unrolled input times the packed weights (see the module)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or not self._packs(x):  # first: a graph break in _packs would
            return super().forward(x)  # evaluate it eagerly, and the code after it would be compiled packed
        batch, channels, _ = x.shape
        (kernel,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        if kernel == 1 and stride == 1 and pad == 0:
            cols = x.transpose(1, 2).reshape(-1, channels)
        else:
            padded = nn.functional.pad(x, (pad, pad)) if pad else x
            # (B, C, L_out, k) → (B·L_out, C·k): the weight's (out, in, k) layout flattened the same way
            cols = padded.unfold(2, kernel, stride).permute(0, 2, 1, 3).reshape(-1, channels * kernel)
        packed = self._packed(lambda: self.weight.reshape(self.out_channels, -1), cols.shape[0])
        out = _linear(cols, packed, self.bias)
        return out.reshape(batch, -1, self.out_channels).transpose(1, 2)


class PackedConvTranspose1d(_PackedWeights, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` whose CPU inference is the input times the packed weights, then the overlapping
    kernel windows summed into the output (``fold``)."""

    def _packs(self, x: torch.Tensor) -> bool:
        return self.output_padding == (0,) and super()._packs(x)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or torch.compiler.is_compiling() or not self._packs(x):
            return super().forward(x, output_size)
        batch, channels, length = x.shape
        (kernel,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        out_channels = self.out_channels
        # weight (in, out, k) → (out·k, in): each input step becomes out·k window values
        packed = self._packed(
            lambda: self.weight.permute(1, 2, 0).reshape(out_channels * kernel, channels), batch * length
        )
        windows = _linear(x.transpose(1, 2).reshape(-1, channels), packed, None)
        windows = windows.reshape(batch, length, out_channels * kernel).transpose(1, 2)
        out_length = (length - 1) * stride - 2 * pad + kernel
        out = nn.functional.fold(windows, (1, out_length), (1, kernel), padding=(0, pad), stride=(1, stride))
        out = out.reshape(batch, out_channels, out_length)
        return out if self.bias is None else out + self.bias.unsqueeze(-1)


def set_cpu_packing(module: nn.Module, enabled: bool) -> int:
    """Turn the packed CPU path on or off for every packed convolution in ``module``; returns how many."""
    count = 0
    for child in module.modules():
        if isinstance(child, _PackedWeights):
            child.cpu_packing = bool(enabled)
            child._packed_cache = None
            count += 1
    return count
