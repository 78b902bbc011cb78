"""Operator commands run by hand on a deployment: `livekit setup` (a phone number's LiveKit side) and
`doctor` (is everything wired up?). Each module's `main(argv) -> int` is the command."""
