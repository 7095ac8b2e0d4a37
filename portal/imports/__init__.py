"""Importing invoices and credit notes from JSON, CSV and UBL files (docs/import-format.md)."""
