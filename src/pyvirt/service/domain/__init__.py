"""Domain use cases: define, lifecycle, displays, guest agent, host devices."""
