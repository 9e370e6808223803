"""Data parallelism: devices=2 (two CPU devices forced in a fresh process) gives
one device's run."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np


def test_data_parallel_over_two_devices_matches_one():
    script = textwrap.dedent(
        """
        import json, jax, numpy as np, jaxbp
        from jaxbp import data, optim
        from jaxbp.train import fit
        assert len(jax.devices()) == 2
        ds = data.load("blobs", n=200)
        model = jaxbp.mlp([2, 16, 3])
        runs = [fit(model, ds.train, ds.val, optimizer=optim.adam(0.01), batch_size=16,
                    epochs=3, devices=d) for d in (1, 2)]
        print(json.dumps([[r["train_loss"] for r in run.history] for run in runs]))
        from jaxbp import recipes
        from jaxbp.data.text import encode
        from jaxbp.train import fit_language_model
        text = "the cat sat on the mat. " * 20
        vocab = "".join(sorted(set(text)))
        tokens = encode(text, vocab)
        lms = []
        for lm in (recipes.language_model("lstm", len(vocab), block_size=8, hidden=(8,)),
                   recipes.language_model("gpt", len(vocab), block_size=8, layers=2,
                                          heads=2, width=16)):
            lms += [fit_language_model(lm, tokens[:400], tokens[400:],
                                       optimizer=optim.adam(0.01), steps=4, batch_size=4,
                                       block_size=8, eval_interval=2, eval_batches=1,
                                       devices=d) for d in (1, 2)]
        print(json.dumps([[r["val_loss"] for r in run.history] for run in lms]))
        try:
            fit(model, ds.train, optimizer=optim.adam(0.01), batch_size=15, devices=2)
        except ValueError as error:
            print(json.dumps(str(error)))
        """
    )
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
        + " --xla_force_host_platform_device_count=2",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    one, two = json.loads(lines[-3])
    np.testing.assert_allclose(two, one, rtol=1e-5)
    lstm_one, lstm_two, gpt_one, gpt_two = json.loads(lines[-2])
    np.testing.assert_allclose(lstm_two, lstm_one, rtol=1e-5)  # validation losses
    np.testing.assert_allclose(gpt_two, gpt_one, rtol=1e-5)
    assert "batch_size 15 must be divisible by devices=2" in json.loads(lines[-1])
