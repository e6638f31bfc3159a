from collections.abc import Callable

import numpy as np
import pytest
import torch

from convention.errors import ConventionError
from convention.inputs import InputEncoder, InputSpec
from convention.models import create_model, gflops_per_object, list_models
from convention.models.layers.band_embedding import BandEmbedding
from tests.test_series import make_series

ALL = [(name, preset) for name, entry in list_models().items() for preset in entry.presets]
UGRIZ = ["sdss::u", "sdss::g", "sdss::r", "sdss::i", "sdss::z"]


def batch(lengths, size, n_bands=5, seed=0, lightcurve=False):
    g = torch.Generator().manual_seed(seed)
    m = max(lengths)
    shape = (2,) if lightcurve else (size, size)
    frames = torch.randn(len(lengths), m, *shape, generator=g)
    bands = torch.randint(1, n_bands + 1, (len(lengths), m), generator=g)
    times = torch.cumsum(torch.rand(len(lengths), m, generator=g) * 3, dim=1)
    mask = torch.arange(m)[None] < torch.tensor(lengths)[:, None]
    weights = mask[..., None] if lightcurve else mask[..., None, None]
    return frames * weights, bands * mask, times * mask, mask


def encoded_batch(spec: InputSpec, lengths=(10, 7, 5)) -> dict:
    """A batch of made-up ugriz series as the model's declared inputs."""
    series = [
        make_series(
            m=m,
            size=spec.stamp_size,
            band=np.array(UGRIZ * 2)[:m],
            object_id=f"o{k}",
            frames=np.random.default_rng(k).normal(size=(m, spec.stamp_size, spec.stamp_size)),
        )
        for k, m in enumerate(lengths)
    ]
    encoder = InputEncoder(spec, UGRIZ)
    encoder.fit(series)
    return encoder.collate([encoder.encode(s) for s in series])["inputs"]


@pytest.mark.parametrize("name, preset", ALL)
def test_forward_backward_every_model(name, preset):
    torch.manual_seed(0)
    model = create_model(name, 4, 5, preset)
    inputs = encoded_batch(model.input_spec)
    logits = model(**inputs)
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    logits.sum().backward()
    for pname, p in model.named_parameters():
        if pname.endswith("attention.similarity.bias"):
            continue  # the query's term cancels in the published attention's softmax
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    # The timm surface pre-training and fine-tuning use.
    model.eval()
    with torch.no_grad():
        features = model.forward_features(**inputs)
        assert features.shape == (3, model.num_features)
        assert torch.equal(model.forward_head(features), model(**inputs))
        head = {id(p) for p in model.get_classifier().parameters()}
        model.reset_classifier(0)
        assert torch.equal(model(**inputs), features)
        model.reset_classifier(7)
        assert model(**inputs).shape == (3, 7)
        assert head.isdisjoint(id(p) for p in model.parameters())  # the head alone replaced


def test_2d_cnn_ablation():
    model = create_model("convention", 4, 5, "cpu", cnn="2d").eval()
    frames, bands, times, mask = batch([5, 2], 32)
    assert torch.isfinite(model(frames, bands, times, mask)).all()


def test_paper_preset_matches_the_publication():
    model = create_model("convention", 4, 5, "paper")
    params = sum(p.numel() for p in model.parameters())
    assert params == pytest.approx(1.253e6, rel=0.005)
    assert model.config.max_tokens == 33
    assert model.tokenizer.token_shape == (8, 9, 9)
    assert gflops_per_object(create_model("convention", 4, 5, "cpu"), 5) < 0.2


def _matrix_flops_per_step(model: torch.nn.Module) -> float:
    """2 x the weights every step multiplies through in the recurrent or attention layers
    (an LSTM or GRU layer multiplies its input and its hidden state by every gate's
    weights)."""
    layers = (torch.nn.LSTM, torch.nn.GRU, torch.nn.TransformerEncoderLayer)
    weights = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, layers)
        for name, p in m.named_parameters()
        if p.dim() == 2
    )
    return 2.0 * weights


@pytest.mark.parametrize("name", ["cnn-lstm", "cnn-gru", "lc-lstm", "lc-transformer"])
def test_gflops_count_the_recurrent_and_attention_layers(name):
    model = create_model(name, 4, 5, "cpu")
    counted = gflops_per_object(model, 5, n_frames=99) * 1e9
    assert counted >= 99 * _matrix_flops_per_step(model)
    assert model.training  # counted on a copy


@pytest.mark.parametrize("encoding", ["index", "time"])
@pytest.mark.parametrize("band_embedding", ["learned", "fixed", "none"])
def test_padding_does_not_change_logits(encoding, band_embedding):
    torch.manual_seed(1)
    model = create_model(
        "convention", 4, 5, "tiny", positional_encoding=encoding, band_embedding=band_embedding
    ).eval()
    frames, bands, times, mask = batch([8, 5], 32)
    padded = torch.nn.functional.pad(frames, (0, 0, 0, 0, 0, 7))
    extra = [torch.nn.functional.pad(t, (0, 7)) for t in (bands, times, mask)]
    with torch.no_grad():
        short = model(frames, bands, times, mask)
        long = model(padded, *extra)
        # junk in padded frames is ignored too
        junk = padded.clone()
        junk[:, 8:] = 100.0
        noisy = model(junk, *extra)
    assert torch.allclose(short, long, atol=1e-5)
    assert torch.allclose(short, noisy, atol=1e-5)


def test_band_embedding_padding_is_zero_and_unused():
    emb = BandEmbedding(5, 8, "learned")
    assert torch.all(emb(torch.zeros(1, 3, dtype=torch.long)) == 0)
    fixed = BandEmbedding(5, 8, "fixed")
    assert torch.all(fixed(torch.zeros(1, 2, dtype=torch.long)) == 0)
    assert torch.all(fixed(torch.full((1, 2), 5)) == 1)


def test_tiny_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = create_model("convention", 4, 5, "tiny", stamp_size=16)
    frames, bands, times, mask = batch([9, 6, 9, 7, 8, 9, 5, 9], 16, seed=3)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(150):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(frames, bands, times, mask), labels)
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        predicted = model(frames, bands, times, mask).argmax(1)
    assert (predicted == labels).all()


@pytest.mark.parametrize(
    "name, preset, kwargs, message",
    [
        ("transformer", "cpu", {}, "unknown model 'transformer'"),
        ("convention", "huge", {}, "unknown preset 'huge'"),
        ("convention", "cpu", {"band_embedding": "random"}, "band embedding must be"),
        ("convention", "cpu", {"depth": 3}, "cannot build convention"),
    ],
)
def test_bad_model_requests(name, preset, kwargs, message):
    with pytest.raises(ConventionError, match=message):
        create_model(name, 4, 5, preset, **kwargs)


def test_variable_lengths_not_multiple_of_chunk():
    model = create_model("convention", 3, 5, "tiny").eval()
    for m in (1, 2, 3, 4, 10):
        frames, bands, times, mask = batch([m], 32)
        assert np.isfinite(model(frames, bands, times, mask).detach().numpy()).all()


@pytest.mark.parametrize("name", ["cnn-lstm", "cnn-gru"])
def test_recurrent_baselines_ignore_padding(name):
    torch.manual_seed(2)
    model = create_model(name, 4, 5, "tiny").eval()
    frames, bands, times, mask = batch([6, 3], 32)
    padded = torch.nn.functional.pad(frames, (0, 0, 0, 0, 0, 5))
    padded[:, 6:] = 50.0
    extra = [torch.nn.functional.pad(t, (0, 5)) for t in (bands, times, mask)]
    with torch.no_grad():
        assert torch.allclose(model(frames, bands, times, mask), model(padded, *extra), atol=1e-5)


@pytest.mark.parametrize("name", ["lc-lstm", "lc-transformer"])
def test_lightcurve_models_ignore_padding(name):
    torch.manual_seed(3)
    model = create_model(name, 4, 5, "tiny").eval()
    frames, bands, times, mask = batch([9, 4], 32, lightcurve=True)
    padded = torch.nn.functional.pad(frames, (0, 0, 0, 6))
    padded[:, 9:] = 30.0
    extra = [torch.nn.functional.pad(t, (0, 6)) for t in (bands, times, mask)]
    with torch.no_grad():
        assert torch.allclose(model(frames, bands, times, mask), model(padded, *extra), atol=1e-5)


@pytest.mark.parametrize("preset, overrides", [("cpu", {}), ("tiny", {}), ("cpu", {"cnn": "2d"})])
def test_tokenizer_2d_layers_compute_the_3d_convolutions(preset, overrides):
    """The 2D tokenizer equals the published 3D CNN over each chunk, and a checkpoint of
    the 3D layout (5D conv weights) loads into it with the same logits."""
    torch.manual_seed(4)
    model = create_model("convention", 4, 5, preset, **overrides).eval()
    tokenizer = model.tokenizer
    assert tokenizer.mode in ("2d-chunk", "2d")
    torch.nn.init.normal_(model.band_embedding.table.weight)
    frames = torch.randn(6, tokenizer.chunk, 32, 32)
    bands = torch.randint(0, 6, (6, tokenizer.chunk))
    with torch.no_grad():
        band_maps = model.band_embedding.maps()[bands]
    x = torch.stack([frames, band_maps], dim=1)  # (T, C, K, H, W)
    for layer in tokenizer.net:
        if isinstance(layer, torch.nn.Conv2d):
            weight = layer.weight
            if tokenizer.mode == "2d-chunk" and x.shape[2] > 1:
                weight = weight.unflatten(1, (x.shape[1], x.shape[2]))
            else:
                weight = weight[:, :, None]
            x = torch.nn.functional.conv3d(
                x, weight, layer.bias, (1, *layer.stride), (0, *layer.padding)
            )
        elif isinstance(layer, torch.nn.BatchNorm2d):
            x = torch.nn.functional.batch_norm(
                x, layer.running_mean, layer.running_var, layer.weight, layer.bias, eps=layer.eps
            )
        else:
            x = layer(x)
    expected = x.mean(dim=2) if tokenizer.mode == "2d" else x[:, :, 0]
    with torch.no_grad():
        assert torch.allclose(tokenizer(frames, bands, model.band_embedding), expected, atol=1e-4)

    state = model.state_dict()
    for name, module in tokenizer.net.named_children():
        if isinstance(module, torch.nn.Conv2d):
            key = f"tokenizer.net.{name}.weight"
            w = state[key]
            in_channels = tokenizer.in_channels if name == "0" else w.shape[1]
            spans = name == "0" and tokenizer.mode == "2d-chunk"
            state[key] = w.unflatten(1, (in_channels, tokenizer.chunk)) if spans else w[:, :, None]
    reloaded = create_model("convention", 4, 5, preset, **overrides).eval()
    reloaded.load_state_dict(state)
    inputs = batch([7, 4], 32)
    with torch.no_grad():
        assert torch.allclose(model(*inputs), reloaded(*inputs), atol=1e-6)


def test_attention_without_pairs_equals_the_pairwise_attention():
    """Without dropout the layer skips the N x N maps (the query's term cancels in the
    softmax): the same output and gradients as every (query, key) pair formed."""
    from convention.models.layers.attention import ConvSelfAttention

    torch.manual_seed(5)
    layer = ConvSelfAttention(8, 4, 5, dropout=0.0)
    x = torch.randn(3, 6, 8, 4, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]).bool()
    fast = layer(x, mask)
    (grad_fast,) = torch.autograd.grad(fast.square().sum(), x)
    pairwise = layer._pairwise(x, mask)
    (grad_pairwise,) = torch.autograd.grad(pairwise.square().sum(), x)
    assert torch.allclose(fast, pairwise, atol=1e-5)
    assert torch.allclose(grad_fast, grad_pairwise, atol=1e-4)


@pytest.mark.parametrize(
    "name", ["convention", "cnn-lstm", "cnn-gru", "lc-lstm", "convention-multi"]
)
def test_inference_path_computes_the_training_path(name):
    """In eval the image CNNs take every frame and the RNNs the padded batch (no shape
    depends on the data, for ONNX); with BatchNorm's running statistics and no dropout the
    training path (real frames only, packed sequences) gives the same logits."""
    torch.manual_seed(4)
    overrides = {"modality_dropout": 0.0} if name == "convention-multi" else {}
    model = create_model(name, 4, 5, "tiny", **overrides)
    inputs = encoded_batch(model.input_spec, lengths=(10, 7, 2))
    model.train()
    with torch.no_grad():
        model(**inputs)  # BatchNorm running statistics away from their initial values
    for module in model.modules():
        frozen = (
            torch.nn.modules.batchnorm._BatchNorm | torch.nn.Dropout | torch.nn.MultiheadAttention
        )
        if isinstance(module, frozen):
            module.eval()
    with torch.no_grad():
        training_path = model(**inputs)
        inference_path = model.eval()(**inputs)
    assert torch.allclose(training_path, inference_path, atol=1e-5)


def test_dot_attention_attends_per_query_and_ignores_padded_keys():
    """The published layer gives every token the same mix of the values; the ``dot``
    layer's mix depends on the query, and padded keys still change nothing."""
    from convention.models.layers.attention import ConvSelfAttention

    torch.manual_seed(6)
    x = torch.randn(2, 5, 8, 4, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]).bool()
    published = ConvSelfAttention(8, 4, 5, dropout=0.0, score="sum").eval()
    dot = ConvSelfAttention(8, 4, 5, dropout=0.0, score="dot").eval()
    with torch.no_grad():
        same = published(x, mask)
        attended = dot(x, mask)
        padded = x.clone()
        padded[1, 3:] = torch.randn(2, 8, 4, 4)
        repadded = dot(padded, mask)
    assert torch.allclose(same[0, 0], same[0, 1:])
    assert not torch.allclose(attended[0, 0], attended[0, 1], atol=1e-3)
    assert torch.allclose(repadded[1, :3], attended[1, :3], atol=1e-6)


def test_dot_attention_convolves_each_score_map():
    """The score maps' per-head convolution, taken as a matrix on the h x w map, is the
    convolution of each (query, key) map: checked against the layer written plainly."""
    import torch.nn.functional as F

    from convention.models.layers.attention import ConvSelfAttention

    torch.manual_seed(7)
    layer = ConvSelfAttention(8, 4, 5, dropout=0.0, score="dot").eval()
    with torch.no_grad():
        layer.similarity.weight.normal_()
    x = torch.randn(2, 4, 8, 4, 4)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    q, k, v = (t.unflatten(1, (4, 2)) for t in layer.qkv(x.flatten(0, 1)).chunk(3, dim=1))
    q, k, v = (t.unflatten(0, (2, 4)) for t in (q, k, v))  # (B, N, G, c, h, w)
    expected = torch.empty(2, 4, 8, 4, 4)
    for b in range(2):
        for i in range(4):
            maps = (q[b, i, None] * k[b]).sum(2) / 2**0.5  # (Nk, G, h, w)
            scores = F.conv2d(maps, layer.similarity.weight, padding=2, groups=4)
            scores[~mask[b]] = float("-inf")
            weights = torch.softmax(scores, dim=0)  # over the keys
            expected[b, i] = (weights[:, :, None] * v[b]).sum(0).reshape(8, 4, 4)
    with torch.no_grad():
        got = layer(x, mask)
        want = layer.out(expected.flatten(0, 1)).unflatten(0, (2, 4))
    assert torch.allclose(got, want, atol=1e-5)


def _frame_cnn(name: str) -> tuple[torch.nn.Module, Callable, Callable]:
    """A model's 2D CNN: the module, its call with the channels-last step, and without."""
    model = create_model(name, 4, 5, "tiny")
    if name == "scone":
        return model, model.forward_features, model.net
    return model, model.encoder, model.encoder.net


@pytest.mark.parametrize("name", ["cnn-lstm", "cnn-gru", "scone"])
def test_frame_cnns_run_channels_last_and_compute_the_same(name):
    torch.manual_seed(4)
    module, laid_out, plain = _frame_cnn(name)
    conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    images = torch.randn(6, conv.in_channels, 16, 16)
    layouts = []
    conv.register_forward_hook(
        lambda module, args, out: layouts.append(
            out.is_contiguous(memory_format=torch.channels_last)
        )
    )
    for train in (True, False):
        module.train(train)
        torch.manual_seed(5)
        output = laid_out(images)
        torch.manual_seed(5)
        assert torch.allclose(output, plain(images), atol=1e-5)
    assert layouts == [True, False, True, False]
