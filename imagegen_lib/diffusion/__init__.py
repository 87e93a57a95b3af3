"""Diffusion and flow matching, one mechanism per module:

- ``schedules``: the DDPM's noise schedules (linear, cosine, zero terminal SNR) and forward process;
- ``unet``: the denoising U-Net (optionally class-conditional);
- ``objectives``: what the network predicts (ε, x₀, v, the flow velocity), conversions, losses, Min-SNR;
- ``guidance``: classifier-free guidance;
- ``samplers``: ancestral, DDIM, Euler, Heun, DPM-Solver++(2M);
- ``toy2d``: a 2-D mixture whose score is known in closed form;
- ``train``: training and export.
"""
