"""One router per resource; `service.app` includes each."""
