"""Getting messages out: the outbox, the dispatcher, the WeChat API client and signed links."""
