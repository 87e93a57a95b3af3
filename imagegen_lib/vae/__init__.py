"""The variational autoencoder: the convolutional VAE and its ELBO (``model``), its training (``train``)."""
