"""Timing tools (`c3seg bench ...`): self-diffusion, the CRF, training throughput, a scaled pipeline."""
