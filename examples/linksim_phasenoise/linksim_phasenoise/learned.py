"""A user's own learned transmitter/receiver pair: a learned constellation and its neural demapper.

As in end-to-end learning of a communication system (O'Shea and Hoydis 2017; Sionna's "autoencoder" tutorial),
``learned_tx`` maps every ``bits_per_symbol`` bits to one of 2^m trainable constellation points, and trains
them in ``fit`` together with a small MLP demapper through its own differentiable training channel (phase
noise + AWGN at ``train_snr_db``). The swept channel of a scenario sits between the two blocks, so the
transmitter publishes itself in the metadata of its output spec (channels pass specs on unchanged) and
``learned_rx`` finds it there in ``setup``: one configuration, written once, on the transmitter.
"""
from __future__ import annotations

import math

import pydantic
import torch

from linksim import Block, Params, Port, PortError, Spec, expect

META_KEY = "learned_tx"


class LearnedTx(Block):
    """Learned constellation: bits_per_symbol bits -> one of 2^m trainable points (unit average energy)."""

    role = "transmitter"
    trainable = True  # fit() runs on the training split; state() is cached by a hash of the configuration
    inputs = {"bits": Port(("bits",), "payload bits")}
    outputs = {"symbols": "complex symbols, mean |s|^2 = 1"}

    class Params(Params):
        bits_per_symbol: pydantic.PositiveInt = pydantic.Field(4, le=8, description="m: 2^m points")
        train_snr_db: float = pydantic.Field(15.0, description="Es/N0 of the training channel, dB")
        train_phase_noise_deg: float = pydantic.Field(0.0, ge=0, description="iid phase noise in training")
        hidden: pydantic.PositiveInt = pydantic.Field(64, description="width of the demapper MLP")
        epochs: pydantic.PositiveInt = pydantic.Field(10, description="passes over the training bits")
        batch_symbols: pydantic.PositiveInt = pydantic.Field(4096, description="symbols per Adam step")
        lr: float = pydantic.Field(0.01, gt=0, description="Adam learning rate")
        seed: int = pydantic.Field(0, description="initialisation and training-noise seed")

    def setup(self, specs):
        bits = specs["bits"]
        expect(bits, "bits", "bits")
        m = self.p.bits_per_symbol
        if bits.size % m:
            raise PortError(f"{bits} is not a whole number of symbols of {m} bits")
        return {"symbols": Spec("complex", (bits.size // m,), {META_KEY: self})}

    # -- the model --------------------------------------------------------------------------------
    def _build(self):
        g = torch.Generator().manual_seed(self.p.seed)
        m = self.p.bits_per_symbol
        self.points = torch.nn.Parameter(torch.randn(2**m, 2, generator=g))
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, the global generator left as it was
            torch.manual_seed(self.p.seed)
            self.demapper = torch.nn.Sequential(torch.nn.Linear(2, self.p.hidden), torch.nn.ReLU(),
                                                torch.nn.Linear(self.p.hidden, self.p.hidden), torch.nn.ReLU(),
                                                torch.nn.Linear(self.p.hidden, m))
        self.weights = 2 ** torch.arange(m - 1, -1, -1)  # bits -> point index, MSB first

    def constellation(self) -> torch.Tensor:
        c = torch.complex(self.points[:, 0], self.points[:, 1])
        return c / c.abs().pow(2).mean().sqrt()

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        groups = bits.reshape(bits.shape[0], -1, self.p.bits_per_symbol).long()
        return self.constellation()[(groups * self.weights).sum(-1)]

    def demap(self, y: torch.Tensor) -> torch.Tensor:
        """LLRs log p(b=1)/p(b=0) (linksim's convention), ``bits_per_symbol`` per symbol."""
        logits = self.demapper(torch.stack([y.real, y.imag], dim=-1).float())
        return logits.reshape(y.shape[0], -1)

    # -- training ---------------------------------------------------------------------------------
    def fit(self, data, ctx):
        self._build()
        g = torch.Generator().manual_seed(self.p.seed + 1)
        opt = torch.optim.Adam([self.points, *self.demapper.parameters()], lr=self.p.lr)
        n0 = 10 ** (-self.p.train_snr_db / 10)
        sigma = math.radians(self.p.train_phase_noise_deg)
        m, step = self.p.bits_per_symbol, self.p.batch_symbols
        for epoch in range(self.p.epochs):
            for batch in data.epoch(epoch):  # dicts of this block's inputs on the training split
                groups = batch["bits"].cpu().reshape(-1, m)
                for i in range(0, len(groups), step):  # Adam steps of batch_symbols symbols
                    bits = groups[i:i + step].reshape(1, -1)
                    x = self.modulate(bits)
                    phi = torch.randn(x.shape, generator=g) * sigma
                    noise = torch.complex(torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g))
                    y = x * torch.polar(torch.ones_like(phi), phi) + noise * math.sqrt(n0 / 2)
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(self.demap(y), bits)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        self.summary = {"epochs": self.p.epochs, "final_bce": round(loss.item(), 5)}
        ctx.record(self.name, self.summary)  # run.json "training" section

    def state(self):
        return {"points": self.points.detach().clone(), "demapper": self.demapper.state_dict(),
                "summary": self.summary}

    def load_state(self, state):
        self._build()
        self.points.data.copy_(state["points"])
        self.demapper.load_state_dict(state["demapper"])
        self.summary = state["summary"]

    def forward(self, bits):
        with torch.no_grad():
            return {"symbols": self.modulate(bits.cpu()).to(bits.device)}


class LearnedRx(Block):
    """Neural demapper of a learned_tx: received symbols -> LLRs and hard bits (configured by its transmitter)."""

    role = "receiver"
    inputs = {"y": Port(("complex",), "received symbols of a learned_tx, through any channel")}
    outputs = {"llr": "LLRs, log p(b=1)/p(b=0)", "bits": "hard decisions"}

    def setup(self, specs):
        y = specs["y"]
        tx = y.meta.get(META_KEY)
        if not isinstance(tx, LearnedTx):
            raise PortError(f"'y' must come (through any channel) from a learned_tx, got {y}")
        self.tx = tx
        n = y.size * tx.p.bits_per_symbol
        return {"llr": Spec("llr", (n,)), "bits": Spec("bits", (n,))}

    def forward(self, y):
        with torch.no_grad():
            llr = self.tx.demap(y.cpu()).to(y.device)
        return {"llr": llr, "bits": (llr > 0).float()}
