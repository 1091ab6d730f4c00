"""The resident's side of the chat: inbound handling, the dialogue engine, the NLU client, rate limits."""
