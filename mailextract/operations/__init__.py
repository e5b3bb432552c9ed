"""Operating the service: health, the job list, removal of finished runs, stored-mail queries."""
