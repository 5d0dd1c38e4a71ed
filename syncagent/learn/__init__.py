"""Learning from the org's own outcomes: export persons as they stood at a snapshot, backtest
rules against what followed, and calibrate readable rules (points per rule) to it.

``persons`` and ``export`` need only the core install; ``metrics``, ``backtest`` and
``calibrate`` need the ``learn`` extra (numpy and scikit-learn), imported by the commands
only when they run.
"""
