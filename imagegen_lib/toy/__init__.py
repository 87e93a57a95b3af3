"""2-D GANs, where every mode is known: mixtures of Gaussians, mode coverage and a small training loop
(``gan``), the tiny MLPs (``models``), and many GANs trained at once in one batched pass (``population``).
"""
