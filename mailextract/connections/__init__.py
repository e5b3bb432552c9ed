"""Connections: saved mailbox sets with their own credentials and a sync schedule.

A connection names the mailboxes (and optionally folders) to keep in sync, the app credentials
to read them with (encrypted in the credential vault; the record keeps only a reference), a
schedule such as `every 15 minutes`, and extraction options. `schedule` parses schedules and
computes due times, `requests` validates bodies, `store` keeps the records in Table storage and
`service` is what the HTTP routes call.
"""
