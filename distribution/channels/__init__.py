"""Delivery channels: one small adapter each behind :class:`distribution.channels.base.Channel`."""
