"""2-D GANs, where every mode is known: mixtures of Gaussians, mode coverage and a small training loop
(``gan``), the tiny MLPs (``models``), many GANs trained at once in one batched pass (``population``),
Q4's named training recipes (``recipes``) and their multi-seed sweep with its table (``sweep``).
"""
