"""Herald's distribution engine: recipients, deliveries, waves, channels and their log.

It knows recipients and messages, not the billing domain, and never imports Flask
or ``portal``.
"""
