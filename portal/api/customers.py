"""/api/v1/customers: find the caller by what they can tell, and read one customer."""

from __future__ import annotations

from distribution.events import record_event
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, customer_by_id, customer_json
from portal.api.errors import ApiError
from portal.api.spec import Param, body, operation, query
from portal.db import db_session
from portal.masking import mask_payment_details
from portal.models import Customer
from portal.ops.customer_lookup import find_customers
from portal.recipients_sync import sync_customer

FINDERS = {"email": "email", "phone": "phone", "customer_number": "customer",
           "account_number": "account", "invoice_number": "invoice"}


@operation(bp, "/customers", "GET", tag="customers", summary="Find customers",
           query=[Param(name, {"type": "string", "minLength": 1, "maxLength": 254},
                        f"The customer's {name.replace('_', ' ')} (exact).")
                  for name in FINDERS],
           responses={200: ("Customers matching every given criterion (at most 50).", {
               "type": "object", "required": ["data"], "properties": {
                   "data": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}}}
           })})
def find():
    """Customers whose email, phone, customer number, account number or invoice number is the
    one given; several criteria must all match. At least one is required."""
    given = {name: value.strip() for name, value in query().items() if value.strip()}
    if not given:
        raise ApiError(422, "missing_field", "Give at least one of " + ", ".join(FINDERS)
                       + " as a query parameter.", "email")
    session = db_session()
    found: dict[int, Customer] | None = None
    for name, value in given.items():
        matches = {m.customer.id: m.customer for m in find_customers(session, value)
                   if FINDERS[name] in m.matched_by}
        found = matches if found is None else {k: v for k, v in found.items() if k in matches}
    customers = sorted((found or {}).values(), key=lambda c: (c.name, c.id))
    return answer({"data": [customer_json(c) for c in customers]})


@operation(bp, "/customers/<int:customer_id>", "GET", tag="customers", summary="Get a customer",
           responses={200: ("The customer.", {"$ref": "#/components/schemas/Customer"})})
def get_customer(customer_id: int):
    """One customer with contacts, accounts, address, VAT and Peppol IDs."""
    return answer(customer_json(customer_by_id(db_session(), customer_id)))



ADDRESS_FIELDS = {"line1": "address_line1", "line2": "address_line2", "city": "city",
                  "postal_code": "postal_code", "country_code": "country_code"}
SHORT = {"type": ["string", "null"], "maxLength": 200}


@operation(bp, "/customers/<int:customer_id>", "PATCH", tag="customers",
           scope="customers:write", summary="Update billing address, VAT ID or Peppol ID",
           body={"type": "object", "additionalProperties": False, "required": ["reason"],
                 "properties": {
                     "address": {"type": "object", "additionalProperties": False,
                                 "properties": {
                                     "line1": {**SHORT, "minLength": 1},
                                     "line2": SHORT,
                                     "city": {"type": "string", "minLength": 1,
                                              "maxLength": 100},
                                     "postal_code": {"type": "string", "minLength": 1,
                                                     "maxLength": 20},
                                     "country_code": {"type": "string",
                                                      "pattern": "^[A-Z]{2}$",
                                                      "description": "an ISO 3166 code such "
                                                                     "as BE"}}},
                     "vat_id": {"type": ["string", "null"],
                                "pattern": "^[A-Z]{2}[0-9A-Z+*.]{2,30}$",
                                "description": "a VAT ID with its country prefix, e.g. "
                                               "BE0123456749"},
                     "peppol_id": {"type": ["string", "null"],
                                   "pattern": "^[0-9]{4}:[^\\s]{1,64}$",
                                   "description": "scheme:identifier, e.g. 0208:0123456749"},
                     "reason": {"type": "string", "minLength": 1, "maxLength": 300,
                                "description": "why (logged with who changed what)"}}},
           responses={200: ("The customer after the change.",
                            {"$ref": "#/components/schemas/Customer"})})
def update_customer(customer_id: int):
    """Change what later invoices carry: the billing address, the VAT ID, the Peppol ID.
    Issued invoices keep what they were issued with. Each change is logged with the key,
    the reason and the values before and after."""
    data = body()
    session = db_session()
    customer = customer_by_id(session, customer_id)
    wanted: dict[str, str | None] = {
        ADDRESS_FIELDS[k]: v for k, v in (data.get("address") or {}).items()}
    if "vat_id" in data:
        wanted["vat_id"] = data["vat_id"]
    if "peppol_id" in data:
        scheme, _, identifier = (data["peppol_id"] or ":").partition(":")
        wanted["peppol_endpoint_scheme"] = scheme or None
        wanted["peppol_endpoint_id"] = identifier or None
    changes = {field: {"from": getattr(customer, field), "to": value}
               for field, value in wanted.items() if getattr(customer, field) != value}
    if changes:
        for field, change in changes.items():
            setattr(customer, field, change["to"])
        actor = current_caller().actor
        record_event(session, "customer", str(customer.id), "customer.updated",
                     {"changes": changes, "reason": mask_payment_details(data["reason"])},
                     actor=actor)
        if customer.peppol_endpoint_id and "peppol_endpoint_id" in changes:
            sync_customer(session, customer, actor=actor)  # the new Peppol address
        session.flush()
    return answer(customer_json(customer))
