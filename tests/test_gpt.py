"""The GPT (``jaxbp.model.gpt``): every parameter tensor's hand-written gradient
against jax.grad and finite differences, a 10-step AdamW trajectory against
optax with jax.grad, the forward against nanoGPT's written out in jnp, weight
tying, causality, GPT-2's initialisation and the parameter tree."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_rel_close

import jaxbp
from jaxbp import layers as L
from jaxbp import optim
from jaxbp.backprop import prepare
from jaxbp.gradcheck import leaf_paths
from jaxbp.regularization import l2_mask
from jaxbp.train import TrainState, make_step, run_steps

VOCAB, STEPS, HEADS, WIDTH = 7, 5, 2, 8


def tiny_gpt(dtype="float64", *, dropout=0.0, n_layer=2, remat=False):
    return jaxbp.model.gpt(
        VOCAB,
        block_size=STEPS,
        n_layer=n_layer,
        n_head=HEADS,
        n_embd=WIDTH,
        dropout=dropout,
        dtype=dtype,
        remat=remat,
    )


def tokens(seed, batch=3):
    """Inputs and next tokens (B, T), integers below VOCAB."""
    rng = np.random.default_rng(seed)
    x, y = (rng.integers(0, VOCAB, size=(batch, STEPS)) for _ in range(2))
    return jnp.asarray(x, jnp.int32), jnp.asarray(y, jnp.int32)


def drawn_params(model, seed):
    """Params at a generic point (GPT-2's N(0, 0.02²) gives nearly uniform
    attention and gradients too small for finite differences to resolve):
    matrices N(0, 1/fan_in), biases and shifts N(0, 0.1²), scales 1 + N(0, 0.1²)."""
    rng = np.random.default_rng(seed)
    spec = jax.eval_shape(model.init, jax.random.key(0))

    def leaf(path, s):
        if jax.tree_util.keystr(path).endswith("['gamma']"):
            value = 1 + 0.1 * rng.normal(size=s.shape)
        elif len(s.shape) >= 2:
            value = rng.normal(size=s.shape) / math.sqrt(s.shape[0])
        else:
            value = 0.1 * rng.normal(size=s.shape)
        return jnp.asarray(value, s.dtype)

    return jax.tree_util.tree_map_with_path(leaf, spec)


# ------------------------------------------------------------ the gradient check


def test_every_tensor_agrees_with_jax_grad_and_finite_differences_in_float64():
    model = tiny_gpt("float64")
    x, y = tokens(0)
    report = jaxbp.check_grads(
        model, drawn_params(model, 0), x, y, finite_differences=True, fd_samples=6
    )
    assert report.ok, str(report)
    assert len(report.leaves) == 2 * 12 + 4  # 12 tensors a block; wte wpe ln_f
    for leaf in report.leaves:
        assert leaf.autodiff_rel <= 1e-10, (leaf.path, leaf.autodiff_rel)
        assert leaf.fd_rel <= 1e-6, (leaf.path, leaf.fd_rel)
        assert leaf.fd_coordinates == min(6, math.prod(leaf.shape))


def test_every_tensor_agrees_with_jax_grad_in_float32():
    model = tiny_gpt("float32")
    x, y = tokens(1)
    params = drawn_params(model, 1)
    report = jaxbp.check_grads(model, params, x, y)
    assert report.ok, str(report)
    for leaf in report.leaves:
        assert leaf.autodiff_rel <= 1e-5, (leaf.path, leaf.autodiff_rel)
        assert leaf.float64_rel <= 1e-10, (leaf.path, leaf.float64_rel)


def test_dropout_everywhere_with_a_fixed_key_agrees_with_jax_grad():
    """Dropout on the embeddings, the attention weights and both residual
    branches: the manual backward replays the forward's masks."""
    model = tiny_gpt("float64", dropout=0.3)
    x, y = tokens(2)
    params = drawn_params(model, 2)
    report = jaxbp.check_grads(model, params, x, y, key=jax.random.key(5))
    assert report.ok and report.max_autodiff_rel <= 1e-10, str(report)
    trained = jaxbp.loss(model, params, x, y, key=jax.random.key(5))
    assert trained != jaxbp.loss(model, params, x, y, train=False)


def test_the_manual_path_calls_no_jax_differentiation(no_differentiation):
    model = tiny_gpt("float64", dropout=0.1)
    x, y = tokens(3)
    run = jax.jit(
        lambda p, key: jaxbp.loss_and_grad(model, p, x, y, key=key),
    )
    value, grads = run(drawn_params(model, 3), jax.random.key(0))
    assert np.isfinite(float(value))
    chex.assert_trees_all_equal_structs(grads, drawn_params(model, 3))


@pytest.mark.parametrize("remat", [False, True], ids=["plain", "remat"])
def test_per_example_gradients_under_vmap_average_to_the_batch_gradient(remat):
    model = tiny_gpt("float64", remat=remat)
    x, y = tokens(4, batch=4)
    params = drawn_params(model, 4)

    def one(xi, yi):
        return jaxbp.loss_and_grad(model, params, xi[None], yi[None])[1]

    per_example = jax.vmap(one)(x, y)
    mean = jax.tree.map(lambda g: g.mean(axis=0), per_example)
    assert_trees_rel_close(mean, jaxbp.loss_and_grad(model, params, x, y)[1], 1e-12)


def test_remat_blocks_give_the_same_gradients_and_agree_with_jax_grad():
    """Gradient checkpointing per block (remat=True): the backward pass
    recomputes each block's forward with the same dropout masks, so the
    gradients are the plain model's; jax.grad (through jax.checkpoint) agrees."""
    plain, remat = (tiny_gpt("float64", dropout=0.2, remat=r) for r in (False, True))
    x, y = tokens(10)
    params = drawn_params(plain, 10)
    key = jax.random.key(4)
    got = jaxbp.loss_and_grad(remat, params, x, y, key=key)
    want = jaxbp.loss_and_grad(plain, params, x, y, key=key)
    assert_trees_rel_close(got, want, 1e-12)
    report = jaxbp.check_grads(remat, params, x, y, key=key)
    assert report.ok and report.max_autodiff_rel <= 1e-10, str(report)


def test_remat_blocks_need_less_memory_for_the_manual_gradient():
    """XLA's temporary buffers of the compiled manual gradient: the blocks'
    caches are recomputed, not kept (the fenced recomputation survives XLA's
    CSE). Compiled, not run."""
    x = jnp.zeros((8, 32), jnp.int32)

    def temp_bytes(remat):
        model = jaxbp.model.gpt(VOCAB, block_size=32, n_layer=4, n_embd=32, remat=remat)
        params = jax.eval_shape(model.init, jax.random.key(0))
        run = jax.jit(lambda p: jaxbp.loss_and_grad(model, p, x, x))
        return run.lower(params).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(True) < 0.6 * temp_bytes(False)


# ------------------------------------------------------------ training trajectory


def trajectory(model, tx, backprop, params, data, keys):
    x, t, indices = data
    step = make_step(model, optimizer=tx, backprop=backprop)
    start = TrainState(params, model.init_state(), tx.init(params))
    run = jax.jit(lambda s: run_steps(step, s, x, t, indices, keys))
    final, losses = run(start)
    return final.params, losses


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_ten_adamw_steps_manual_and_optax_with_jax_grad_give_the_same_losses(dropout):
    """Manual backward + jaxbp.optim.adamw against jax.grad + optax.adamw, the
    same hyperparameters (weight decay on the matrices only): the same loss
    at every step to 1e-9 (float64), and the same parameters at the end."""
    model = tiny_gpt("float64", dropout=dropout)
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(7)
    corpus = rng.integers(0, VOCAB, size=(32, STEPS + 1))
    x, t = corpus[:, :-1], corpus[:, 1:]
    _, target, _, _ = prepare(model, params, x, t, "cross_entropy", None)
    indices = jnp.asarray(rng.integers(0, 32, size=(10, 8)))
    data = (jnp.asarray(x, jnp.int32), target, indices)
    keys = jax.random.split(jax.random.key(1), 10)
    hyper = {"b2": 0.99, "weight_decay": 0.1, "mask": l2_mask}
    ours = trajectory(model, optim.adamw(3e-2, **hyper), "manual", params, data, keys)
    theirs = trajectory(
        model, optax.adamw(3e-2, **hyper), "autodiff", params, data, keys
    )
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-9, atol=0)
    assert_trees_rel_close(ours[0], theirs[0], 1e-9)
    assert float(ours[1][-1]) < float(ours[1][0])  # it learns


# ------------------------------------------------------------ forward, tying, causality


def reference_logits(p, tokens, wte_in, wte_out):
    """nanoGPT's forward written out in jnp (no jaxbp), with the token table of
    the embedding (``wte_in``) and of the head (``wte_out``) separate."""

    def ln(q, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return q["gamma"] * (x - mu) / jnp.sqrt(var + 1e-5) + q["beta"]

    batch, steps = tokens.shape
    d = WIDTH // HEADS
    x = wte_in[tokens] + p["wpe"][:steps]
    for b in p["blocks"]:
        qkv = ln(b["ln_1"], x) @ b["attn"]["w_qkv"] + b["attn"]["b_qkv"]
        q, k, v = (
            z.reshape(batch, steps, HEADS, d).transpose(0, 2, 1, 3)
            for z in jnp.split(qkv, 3, axis=-1)
        )
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
        att = jnp.where(jnp.tril(jnp.ones((steps, steps), bool)), att, -jnp.inf)
        y = (jax.nn.softmax(att, axis=-1) @ v).transpose(0, 2, 1, 3)
        y = y.reshape(batch, steps, WIDTH)
        x = x + y @ b["attn"]["w_proj"] + b["attn"]["b_proj"]
        h = ln(b["ln_2"], x) @ b["mlp"]["w_fc"] + b["mlp"]["b_fc"]
        x = x + jax.nn.gelu(h, approximate=True) @ b["mlp"]["w_proj"]
        x = x + b["mlp"]["b_proj"]
    return ln(p["ln_f"], x) @ wte_out.T


def test_forward_is_nanogpts_and_the_tied_gradient_is_the_sum_of_both_uses():
    model = tiny_gpt("float64")
    x, y = tokens(5)
    params = drawn_params(model, 5)
    (p,) = params
    wte = p["wte"]
    logits = model.apply(params, x)
    np.testing.assert_allclose(logits, reference_logits(p, x, wte, wte), rtol=1e-12)

    def untied_loss(wte_in, wte_out):
        out = reference_logits(p, x, wte_in, wte_out)
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

    d_in, d_out = jax.grad(untied_loss, argnums=(0, 1))(wte, wte)
    value, grads = jaxbp.loss_and_grad(model, params, x, y)
    assert float(value) == pytest.approx(float(untied_loss(wte, wte)), rel=1e-13)
    np.testing.assert_allclose(grads[0]["wte"], d_in + d_out, rtol=1e-10, atol=1e-14)
    # both uses contribute: neither part alone is the gradient
    assert not np.allclose(grads[0]["wte"], d_in) and not np.allclose(
        grads[0]["wte"], d_out
    )


@pytest.mark.parametrize("t", [0, 2, 4])
def test_no_gradient_reaches_a_position_after_the_output(t):
    """dlogits non-zero only at position t (dropout on, training mode): the
    gradient of position s's input, row s of dwpe, is exactly 0 for s > t
    (wpe[s] enters at position s only) and non-zero at t."""
    model = tiny_gpt("float64", dropout=0.2)
    x, _ = tokens(6)
    params = drawn_params(model, 6)
    out, caches, _ = model.forward(
        params, model.init_state(), x, key=jax.random.key(t), train=True
    )
    dout = np.random.default_rng(t).normal(size=out.shape)
    dout[:, np.arange(STEPS) != t] = 0
    grads, dx = model.backward(params, caches, jnp.asarray(dout))
    d_wpe = np.asarray(grads[0]["wpe"])
    assert dx is None
    assert np.all(d_wpe[t + 1 :] == 0) and np.any(d_wpe[t] != 0)


@pytest.mark.parametrize("remat", [False, True], ids=["plain", "remat"])
def test_jacobian_of_the_blocks_manual_backward_is_block_lower_triangular(remat):
    """Two blocks (dropout on, training mode) as a JAX function through the
    custom-VJP bridge, so jax.jacrev's rows come from the hand-written
    backward: ∂out_t/∂x_s is exactly 0 for s > t and non-zero for s ≤ t."""
    blocks = [L.gpt_block(HEADS, dropout=0.2, remat=remat) for _ in range(2)]
    model = jaxbp.sequential(*blocks, in_shape=(STEPS, WIDTH), dtype=jnp.float64)
    params = drawn_params(model, 8)
    f = jaxbp.as_jax_function(model, key=jax.random.key(2), train=True)
    x = jnp.asarray(np.random.default_rng(8).normal(size=(1, STEPS, WIDTH)))
    jacobian = np.asarray(jax.jacrev(lambda x: f(params, x))(x))[0, :, :, 0]
    for t in range(STEPS):
        for s in range(STEPS):
            block = jacobian[t, :, s, :]
            assert np.all(block == 0) if s > t else np.any(block != 0), (t, s)


def test_later_tokens_do_not_change_earlier_logits():
    model = tiny_gpt("float32")
    x, _ = tokens(7)
    params = model.init(jax.random.key(0))
    changed = x.at[:, 3:].set((x[:, 3:] + 1) % VOCAB)
    before, after = model.apply(params, x), model.apply(params, changed)
    np.testing.assert_array_equal(before[:, :3], after[:, :3])
    assert not np.allclose(before[:, 3:], after[:, 3:])


# ------------------------------------------------------------ model, params, init


def test_params_tree_reads_as_gpt2s():
    model = tiny_gpt("float32", n_layer=1)
    params = model.init(jax.random.key(0))
    paths = dict(zip(leaf_paths(model, params), jax.tree.leaves(params)))
    block = {
        "attn/w_qkv": (WIDTH, 3 * WIDTH),
        "attn/b_qkv": (3 * WIDTH,),
        "attn/w_proj": (WIDTH, WIDTH),
        "attn/b_proj": (WIDTH,),
        "ln_1/gamma": (WIDTH,),
        "ln_1/beta": (WIDTH,),
        "ln_2/gamma": (WIDTH,),
        "ln_2/beta": (WIDTH,),
        "mlp/w_fc": (WIDTH, 4 * WIDTH),
        "mlp/b_fc": (4 * WIDTH,),
        "mlp/w_proj": (4 * WIDTH, WIDTH),
        "mlp/b_proj": (WIDTH,),
    }
    want = {f"0.gpt/blocks/0/{k}": v for k, v in block.items()}
    want |= {
        "0.gpt/wte": (VOCAB, WIDTH),
        "0.gpt/wpe": (STEPS, WIDTH),
        "0.gpt/ln_f/gamma": (WIDTH,),
        "0.gpt/ln_f/beta": (WIDTH,),
    }
    assert {k: v.shape for k, v in paths.items()} == want
    decayed = dict(zip(leaf_paths(model, params), jax.tree.leaves(l2_mask(params))))
    assert {k for k, d in decayed.items() if d} == {
        k for k, shape in want.items() if len(shape) == 2
    }


def test_initialisation_is_gpt2s():
    n_layer = 3
    model = jaxbp.model.gpt(50, block_size=32, n_layer=n_layer, n_embd=64)
    params = model.init(jax.random.key(0))[0]
    proj_std = 0.02 / math.sqrt(2 * n_layer)
    stds = {"wte": 0.02, "wpe": 0.02}
    for name in ("wte", "wpe"):
        assert float(jnp.std(params[name])) == pytest.approx(stds[name], rel=0.1)
    for block in params["blocks"]:
        for w, std in (
            (block["attn"]["w_qkv"], 0.02),
            (block["mlp"]["w_fc"], 0.02),
            (block["attn"]["w_proj"], proj_std),
            (block["mlp"]["w_proj"], proj_std),
        ):
            assert float(jnp.std(w)) == pytest.approx(std, rel=0.1)
            assert abs(float(jnp.mean(w))) < 0.1 * std
        for part in ("attn", "mlp"):
            for name, leaf in block[part].items():
                if name.startswith("b_"):
                    assert not np.any(leaf), (part, name)
        for ln in ("ln_1", "ln_2"):
            assert np.all(block[ln]["gamma"] == 1) and not np.any(block[ln]["beta"])


def test_gpt_takes_integer_tokens_and_embedding_models_still_do():
    model = tiny_gpt("float32")
    assert model.takes_tokens and model.out_shape == (STEPS, VOCAB)
    x, _ = tokens(8)
    assert model.check_input(x).dtype == x.dtype
    with pytest.raises(ValueError, match="gpt, which expects integer tokens"):
        model.check_input(x.astype(jnp.float32))
    embedding = jaxbp.sequential(L.embedding(VOCAB, 4), L.dense(VOCAB), in_shape=(5,))
    assert embedding.takes_tokens
    assert jaxbp.sequential(L.serial(L.embedding(3, 2)), in_shape=(5,)).takes_tokens
    assert not jaxbp.mlp([4, 3]).takes_tokens
    assert "gpt" in repr(model) and f"{STEPS}, {VOCAB}" in repr(model)


def test_bad_sizes_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="divisible by n_head; got width 10"):
        jaxbp.model.gpt(VOCAB, n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="n_layer must be an integer >= 1"):
        jaxbp.model.gpt(VOCAB, n_layer=0)
    with pytest.raises(ValueError, match="gpt vocab_size must be a positive integer"):
        jaxbp.model.gpt(0)
    with pytest.raises(ValueError, match="gpt block_size must be a positive integer"):
        jaxbp.model.gpt(VOCAB, block_size=0)
    with pytest.raises(ValueError, match=r"dropout rate must be a number in \[0, 1\)"):
        jaxbp.model.gpt(VOCAB, dropout=1.5)
    with pytest.raises(
        ValueError, match="holds 4 positions; got sequences of length 6"
    ):
        body = L.gpt_body(VOCAB, 4, WIDTH, [L.gpt_block(2)])
        jaxbp.sequential(body, in_shape=(6,)).out_shape  # noqa: B018
    model = tiny_gpt("float32", dropout=0.1)
    x, y = tokens(9)
    with pytest.raises(ValueError, match="needs a PRNG key in training mode"):
        jaxbp.loss_and_grad(model, model.init(jax.random.key(0)), x, y)
