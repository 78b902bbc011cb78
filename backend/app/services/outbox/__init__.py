"""The outbox: events written in the transaction that caused them, then delivered (at least once,
with backoff) to each sink by the delivery loops; and the deliveries as the console lists them."""
