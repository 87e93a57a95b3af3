"""Denoising diffusion: noise schedules, the U-Net, the DDPM loss and the ancestral and DDIM samplers
(``model``), and training (``train``).
"""
