"""The same seed trains the same weights on one machine: linksim switches torch to its deterministic
algorithms before it trains or evaluates (``linksim.context.reseed``)."""
import torch

from linksim.context import reseed


def test_reseed_turns_on_deterministic_algorithms():
    reseed(0)
    assert torch.are_deterministic_algorithms_enabled()


def test_indexing_backward_is_repeatable_with_threads():
    """``table[labels]`` (a class-prompt embedding, a VQ codebook) back-propagates into ``table`` with atomic
    float adds across threads unless deterministic algorithms are on: 10 passes then gave 10 different
    gradients with 2 threads (measured); here they must all be equal."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        reseed(0)
        table = torch.randn(10, 128, requires_grad=True)
        labels = torch.randint(0, 10, (256,))
        upstream = torch.randn(256, 128)
        grads = set()
        for _ in range(10):
            table.grad = None
            (table[labels] * upstream).sum().backward()
            grads.add(table.grad.numpy().tobytes())
        assert len(grads) == 1
    finally:
        torch.set_num_threads(threads)
