"""Super-resolution, the whole protocol: the image sets and LR images (``data``), MATLAB-compatible
bicubic (``imresize``), YCbCr (``colour``), the networks (``models``), training (``train``), Y-PSNR/SSIM
with the border shave (``metrics``), published numbers (``published``) and the results table (``report``).
"""
