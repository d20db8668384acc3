"""Ensemble-mean layer: what a macroscopic sample of the paper's structures scatters.

* :mod:`.levelcut` -- exact curves of the level cut (the sigma = 0 two-phase structure) and of bands
  between two levels of the GRF (Berk/Teubner), the control variates of the table.
* :mod:`.build` and :mod:`.tabulate` -- the Monte-Carlo table made by the package's own simulator
  (resumable, Dask or CuPy where available), and its conversion into a spline table with a card.
* :mod:`.table` -- the evaluator behind the ``grf_two_phase`` and ``grf_three_phase`` SasView models
  (NumPy/SciPy only; imported by the plugin models, so this package imports nothing heavy).

Units: dimensionless throughout (lengths in units of a, q in 1/a); a structure with scaling
parameter a scatters a^3 F(q a) per unit volume and unit contrast.
"""
