"""Data lifecycle: retention per record type, legal holds, purge, GDPR export and erasure.

Issued documents and the evidence around them are kept for the legal retention
period (7 years by default, per country configurable); operational logs much
shorter. A legal hold on a customer or an invoice suspends every deletion that
would touch it. The event log is evidence itself and is never purged.
"""
