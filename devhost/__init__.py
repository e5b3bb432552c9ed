"""devhost: a local runtime that hosts this unchanged Functions app the way the Azure Functions
host and the Durable Task extension would, backed by real Azure Storage (Azurite locally).

Dev and CI tooling only: function_app.py never imports it and .funcignore keeps it out of
deployments. What it supports and where it deviates from Azure: devhost/README.md.
"""
