"""The state of a unidirectional RNN after each sequence's last real step."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def last_state(rnn: nn.RNNBase, steps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, hidden) the last layer's hidden state after each sequence's last real step.

    Args:
        rnn: a unidirectional, batch-first LSTM or GRU.
        steps: (B, M, F) the sequences, real steps first, padding after.
        mask: (B, M) True for real steps; every sequence needs at least one.

    In training the sequences are packed (no work on padding). In inference the padded
    batch runs whole and each sequence's output at its last real step is taken: the same
    state (padding comes after the real steps, so it cannot reach them), and no shape that
    depends on the data, so the graph exports to ONNX.
    """
    if rnn.training:
        lengths = mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(steps, lengths, batch_first=True, enforce_sorted=False)
        _, state = rnn(packed)
        return (state[0] if isinstance(rnn, nn.LSTM) else state)[-1]
    outputs, _ = rnn(steps)
    last = (mask.sum(dim=1) - 1)[:, None, None].expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, last)[:, 0]
