"""mailextract: the core package (plain Python, no azure.functions imports).

It knows how to talk to Microsoft Graph, how to store mail in Table and Blob storage, and the
extraction steps; the Functions layers (http_triggers, orchestrators, activities) only adapt it.
"""

__version__ = "0.4.0"
