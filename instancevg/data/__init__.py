"""Datasets: the procedural GREC/GRES benchmark and gRefCOCO-style JSON loaders."""
