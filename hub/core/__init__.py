"""The core: the one path of a customer's message (pipeline), what happens to conversations,
the outbox, the bus, and the running hub every channel talks to (receiver). It knows no
channel, no feature and no HTTP route: those plug in through hub.ports and `Feature`."""
