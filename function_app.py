"""Composition root of the Function app: builds the DFApp and registers each blueprint.

Nothing else belongs here: the Functions worker (and devhost) import this module to index the
functions, so it must not read settings or connect to anything at import time.
"""
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
