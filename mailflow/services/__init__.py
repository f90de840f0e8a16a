"""Use cases. Every state change opens one transaction, asks the domain for the transition,
stores it with its event record and outbox rows, and commits once. The API, the action links,
the CLI and the sweeper all call these functions."""
