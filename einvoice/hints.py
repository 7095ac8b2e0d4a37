"""Plain-language advice for the official rules that billing teams meet most often.

The official messages say what a rule checks; these say what to change in the
billing data so that the rule passes.
"""

from __future__ import annotations

HINTS = {
    "BR-CO-10": "The sum of the line net amounts must equal the line total; recompute the "
                "totals from the lines instead of copying them from the billing system.",
    "BR-CO-13": "Total without VAT = line total − document allowances + document charges; "
                "recompute it.",
    "BR-CO-14": "The VAT total must equal the sum of the VAT per category; compute VAT per "
                "category and rate on the taxable amount, then round, never sum rounded lines.",
    "BR-CO-15": "Total with VAT = total without VAT + VAT total; one of the three amounts is "
                "wrong.",
    "BR-CO-16": "Amount due = total with VAT − prepaid amount + rounding; recompute it.",
    "BR-CO-25": "When an amount is due, give a due date or payment terms.",
    "BR-S-08": "For standard-rated lines, each taxable amount must match its lines at that "
               "rate; check lines with the same category but a different rate.",
    "BR-E-10": "Exempt (E) VAT needs an exemption reason text or a VATEX code.",
    "BR-AE-10": "Reverse charge (AE) needs an exemption reason, e.g. 'Reverse charge' with "
                "code VATEX-EU-AE.",
    "BR-AE-02": "Reverse charge (AE) needs the seller's and the buyer's VAT IDs.",
    "BR-DEC-20": "Amounts may have at most 2 decimals; round VAT per category, not per line.",
    "BR-CL-16": "Use a payment means code from UNCL4461, e.g. 30 or 58 (credit transfer).",
    "BR-CL-17": "Use a VAT category from UNCL5305: S, Z, E, AE, K, G, O, L or M.",
    "BR-CL-23": "Use a UN/ECE Rec 20/21 unit code such as C62 (one), HUR (hour) or KWH.",
    "BR-62": "The seller's electronic address needs its scheme (schemeID), e.g. 0208 for a "
             "Belgian enterprise number.",
    "BR-63": "The buyer's electronic address needs its scheme (schemeID).",
    "PEPPOL-EN16931-R003": "Give a buyer reference or an order reference (the customer's "
                           "purchase order or their own reference).",
    "PEPPOL-EN16931-R004": "Use the Peppol BIS Billing 3.0 CustomizationID.",
    "PEPPOL-EN16931-R010": "The buyer needs a Peppol electronic address; documents for "
                           "customers without one go by email or portal instead.",
    "PEPPOL-EN16931-R020": "Set the seller's Peppol ID (scheme and identifier) in the "
                           "organisation settings.",
    "PEPPOL-EN16931-CL008": "The electronic address scheme must be a Peppol EAS code (e.g. "
                            "0208, 0106, 9925); email addresses are not Peppol addresses.",
    "XSD": "The XML does not follow the UBL 2.1 schema: an element is missing, misspelt or "
           "in the wrong order.",
}


def hint_for(rule_id: str) -> str:
    """Advice for ``rule_id``, or an empty string when there is none."""
    return HINTS.get(rule_id, "")
