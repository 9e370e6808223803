

def test_every_activation_has_a_written_derivative():
    from jaxbp.activations import ACTIVATIONS
    from jaxbp.explain.formulas import DERIVATIVE

    assert set(ACTIVATIONS) <= set(DERIVATIVE)
