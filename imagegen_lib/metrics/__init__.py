"""Evaluating generators: a feature extractor (``classifier``) and the metrics computed in its space."""
