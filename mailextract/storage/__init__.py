"""Table and Blob storage for the service: job state, the message index, bodies, attachments."""
