"""Traffic profiles: what a simulated household sounds like.

* ``realistic`` (the CLI's default): natural errors only (no injected faults); rooms mostly
  quiet or moderately noisy, some reverberant, some with a TV or other people talking; speech
  not addressed to the assistant now and then. The sources of each figure are in
  docs/simulation.md ("Traffic profiles").
* ``stress``: the high fault rates that make every failure point common (training data for the
  failure-point labeler).

A profile only sets defaults: ``--faults``, ``--conditions``/``--snr`` given on the command line
win.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.faults import DEFAULT_FAULTS


@dataclass(frozen=True)
class Profile:
    name: str
    faults: str
    # acoustic conditions, repeated to weigh them (a session draws one uniformly)
    conditions: tuple[str, ...]
    background_rate: float  # chance per goal of speech near the device not addressed to it
    ood_rate: float  # share of requests the domain cannot serve
    asr_scale: float = 1.0  # text fidelity: factors on the error model's rates, which were
    wake_scale: float = 1.0  # fitted on synthetic voices (sim/asr_errors.py)

    def sim_fields(self) -> dict:
        """The ``SimOptions`` fields this profile sets (a caller's own choices go on top)."""
        return {
            "faults": self.faults,
            "conditions": self.conditions,
            "background_rate": self.background_rate,
            "ood_rate": self.ood_rate,
            "profile": self.name,
            "asr_scale": self.asr_scale,
            "wake_scale": self.wake_scale,
        }


PROFILES = {
    # Conditions: Smeds et al. 2015 (everyday SNRs mostly +5…+15 dB, quiet homes higher) and
    # Pearsons et al. 1977 (home noise ~40–50 dBA vs normal speech ~55–60 dBA at 1 m): clean or
    # +20 dB most of the time, +10 dB less often; furnished living rooms reverberate ~0.4–0.6 s
    # (Díaz & Pedrero 2005); TV or other talkers (babble) in some sessions.
    "realistic": Profile(
        "realistic",
        faults="",
        conditions=("clean",) * 4 + ("pink@20dB",) * 3 + ("rt0.6",) * 2 + ("pink@10dB", "babble@10dB"),
        background_rate=0.3,
        ood_rate=0.08,
        # real speech: WER 3.0 % (README, smoke clips) vs 26.4 % on synthetic SLURP
        # commands; wake misses 1 of 60 real "alexa" clips (tools/measure_wake_real.py)
        # vs 19.9 % for the synthetic voices in clean audio
        asr_scale=round(3.0 / 26.4, 3),
        wake_scale=round(1.7 / 19.9, 3),
    ),
    # DEFAULT_FAULTS with resolve and result raised: real phrasing makes more turns fail at nlu
    # first, and resolve fell to 2.4 % of turns (200 sessions, seed 19), result to 2.9 %
    "stress": Profile(
        "stress",
        faults=DEFAULT_FAULTS.replace("resolve=0.2", "resolve=0.3").replace("result=0.18", "result=0.25"),
        conditions=(),
        background_rate=0.5,
        ood_rate=0.08,
    ),
}
DEFAULT_PROFILE = "realistic"
