"""Figures and tables from stage outputs."""
