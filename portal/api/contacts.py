"""/api/v1/customers/{id}/contacts: add an email address or phone number to a customer.

A CRM or call centre adds what the caller gave; the change is logged with the
key (who) and the reason (why). A new email address becomes one of the
customer's verified email addresses for delivery, as the billing system's are.
"""

from __future__ import annotations

from distribution.events import record_event
from portal.api import bp
from portal.api.auth import current_caller
from portal.api.common import answer, customer_by_id, customer_json
from portal.api.errors import ApiError
from portal.api.spec import body, operation
from portal.db import db_session
from portal.masking import mask_payment_details
from portal.models import Contact
from portal.recipients_sync import sync_customer

EMAIL = {"type": "string", "maxLength": 254, "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
         "description": "an email address such as anna@example.com"}
PHONE = {"type": "string", "maxLength": 40, "pattern": r"^\+?[0-9][0-9 ().-]{5,38}$",
         "description": "a phone number, best in international form such as +32 470 12 34 56"}


@operation(bp, "/customers/<int:customer_id>/contacts", "POST", tag="customers",
           scope="customers:write", summary="Add a contact (email and/or phone) to a customer",
           body={"type": "object", "additionalProperties": False, "required": ["reason"],
                 "properties": {
                     "name": {"type": "string", "minLength": 1, "maxLength": 200},
                     "role": {"type": "string", "minLength": 1, "maxLength": 60,
                              "description": "e.g. accounts payable"},
                     "email": EMAIL, "phone": PHONE,
                     "primary": {"type": "boolean", "default": False,
                                 "description": "make it the customer's primary contact"},
                     "reason": {"type": "string", "minLength": 1, "maxLength": 300,
                                "description": "why (logged with who added it)"}}},
           responses={201: ("The customer with the new contact.",
                            {"$ref": "#/components/schemas/Customer"})})
def add_contact(customer_id: int):
    """Add a person's email address and/or phone number to a customer. At least one of email
    and phone is required; an email address the customer already has is refused (409). The
    addition is logged with the key and the reason; a new email address becomes a verified
    delivery address of the customer."""
    data = body()
    email = (data.get("email") or "").strip() or None
    phone = (data.get("phone") or "").strip() or None
    if email is None and phone is None:
        raise ApiError(422, "missing_field", "Give email or phone (or both) for the new "
                       "contact.", "email")
    session = db_session()
    customer = customer_by_id(session, customer_id)
    if email and any((c.email or "").lower() == email.lower() for c in customer.contacts):
        raise ApiError(409, "already_exists", f"Customer {customer.number} already has a "
                       f"contact with email {email}; nothing was added.", "email")
    primary = bool(data.get("primary", False))
    if primary:
        for other in customer.contacts:
            other.is_primary = False
    contact = Contact(name=data.get("name"), role=data.get("role"), email=email, phone=phone,
                      is_primary=primary or not customer.contacts)
    customer.contacts.append(contact)
    session.flush()
    actor = current_caller().actor
    record_event(session, "customer", str(customer.id), "customer.contact_added",
                 {"contact_id": contact.id, "name": contact.name, "email": email,
                  "phone": phone, "primary": contact.is_primary,
                  "reason": mask_payment_details(data["reason"].strip())}, actor=actor)
    if email:
        sync_customer(session, customer, actor=actor)  # the new address, verified
    return answer(customer_json(customer), 201,
                  location=f"/api/v1/customers/{customer.id}")
