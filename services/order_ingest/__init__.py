"""Order ingest: webhooks → Get Order Detail → accepted / skipped / withdrawn, with a reason for every order."""
