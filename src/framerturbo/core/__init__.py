"""Pure foundations: EDM formulas, trajectories, seeds, atomic writes, the typed config."""
