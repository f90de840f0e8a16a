"""mailflow: a marketplace's order-refusal and cancellation workflow, run by email."""

__version__ = "0.1.0"
