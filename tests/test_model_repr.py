"""repr(Model): a layer table with output shapes and parameter counts."""

import jax

import jaxbp


def test_repr_is_a_layer_table_with_the_parameter_count():
    model = jaxbp.mlp([5, 7, 3], batchnorm=True, dropout=0.1)
    params = model.init(jax.random.key(0))
    total = sum(leaf.size for leaf in jax.tree.leaves(params))
    text = repr(model)
    lines = text.splitlines()
    assert f"{len(model.layers)} layers, {total:,} parameters" in lines[0]
    assert "function" not in text and " at 0x" not in text
    rows = [line.split() for line in lines[2:]]
    assert [row[1] for row in rows] == list(model.layer_names)
    counts = [int(row[-1].replace(",", "")) for row in rows]
    per_layer = [sum(leaf.size for leaf in jax.tree.leaves(p)) for p in params]
    assert counts == per_layer
    assert rows[-1][2] == "(3,)"
