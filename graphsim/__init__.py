"""graphsim: a Microsoft Graph (mail) + Entra ID simulator for local runs and tests. Never deployed.

Start it with `python -m graphsim` or, in tests, `graphsim.testing.GraphSim.start(...)`.
See graphsim/README.md for what it simulates and where it differs from the real services.
"""
