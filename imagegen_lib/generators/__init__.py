"""Every shipped generator behind one sampling interface (``samplers``: GAN, conditional GAN, VAE, DDPM),
and the table that scores them side by side (``compare``).
"""
