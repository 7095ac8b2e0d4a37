"""/api/v1/customers: find the caller by what they can tell, and read one customer."""

from __future__ import annotations

from portal.api import bp
from portal.api.common import answer, customer_by_id, customer_json
from portal.api.errors import ApiError
from portal.api.spec import Param, operation, query
from portal.db import db_session
from portal.models import Customer
from portal.ops.customer_lookup import find_customers

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

