"""Writes imported documents: all of a file or nothing, and nothing twice.

The service adds records to the caller's session and raises ImportRejected
when anything is wrong; the caller (the CLI, the API) then rolls back, so a
bad file leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

import einvoice
from distribution.documents import DocumentStore
from distribution.events import record_event
from distribution.sqltypes import utcnow
from portal.imports.documents import CustomerInput, ImportedDocument
from portal.imports.problems import ImportRejected, Problem
from portal.invoice_documents import buyer_party, fill_invoice, seller_party, specification
from portal.issuing import IssuingRefused, issue_invoice
from portal.models import (
    Account,
    Contact,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceStatus,
    Organisation,
)


@dataclass(slots=True)
class ImportResult:
    """What importing one file did."""

    file: str
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class _Importer:
    """State for one file: the organisations, customers and accounts seen so far."""

    def __init__(self, session: Session, rules_dir: Path | None, actor: str,
                 store: DocumentStore | None) -> None:
        self.session = session
        self.store = store
        self.rules_dir = rules_dir
        self.actor = actor
        self.problems: list[Problem] = []
        self.customers: dict[tuple[int, str], Customer] = {}
        self.accounts: dict[tuple[int, str], Account] = {}

    def organisation(self, doc: ImportedDocument) -> Organisation | None:
        query = sa.select(Organisation)
        if doc.seller_vat_id:
            found = self.session.scalars(query.where(Organisation.vat_id == doc.seller_vat_id)
                                         ).first()
            if found is None:
                self.fail(doc, "seller_vat_id", f"no seller with VAT ID {doc.seller_vat_id!r} is "
                          "set up in Herald; check the VAT ID or set the seller up first")
            return found
        if doc.seller_endpoint:
            scheme, endpoint = doc.seller_endpoint
            found = self.session.scalars(query.where(
                Organisation.peppol_endpoint_scheme == scheme,
                Organisation.peppol_endpoint_id == endpoint)).first()
            if found is None:
                self.fail(doc, "seller", f"no seller with Peppol ID {scheme}:{endpoint} or this "
                          "VAT ID is set up in Herald")
            return found
        organisations = self.session.scalars(query.limit(2)).all()
        if len(organisations) == 1:
            return organisations[0]
        self.fail(doc, "seller_vat_id", "Herald has several sellers (or none); say which one "
                  "issued this document with seller_vat_id" if organisations else
                  "no seller is set up in Herald yet; run 'herald demo' or set one up first")
        return None

    def customer(self, org: Organisation, doc: ImportedDocument) -> Customer | None:
        wanted = doc.customer
        key = (org.id, wanted.number)
        if key not in self.customers:
            found = self.session.scalars(sa.select(Customer).where(
                Customer.organisation_id == org.id, Customer.number == wanted.number)).first()
            if found is None:
                found = self._new_customer(org, doc, wanted)
            if found is None:
                return None
            self.customers[key] = found
        return self.customers[key]

    def _new_customer(self, org: Organisation, doc: ImportedDocument,
                      wanted: CustomerInput) -> Customer | None:
        missing = [name for name, value in (("customer.name", wanted.name),
                                            ("customer.address.country_code",
                                             wanted.country_code)) if not value]
        for name in missing:
            label = name.split(".")[-1]
            self.fail(doc, name, f"customer {wanted.number} is new to Herald, so its {label} "
                      "is needed to create it")
        if missing:
            return None
        business = wanted.kind == "business" or (wanted.kind is None and bool(wanted.vat_id))
        customer = Customer(
            organisation_id=org.id, number=wanted.number, name=wanted.name,
            kind=CustomerKind.BUSINESS if business else CustomerKind.CONSUMER,
            language=wanted.language or "en",
            time_zone=wanted.time_zone or "Europe/Brussels",
            address_line1=(wanted.address_lines or [None])[0],
            address_line2=wanted.address_lines[1] if len(wanted.address_lines) > 1 else None,
            city=wanted.city, postal_code=wanted.postal_code,
            country_subdivision=wanted.country_subdivision, country_code=wanted.country_code,
            vat_id=wanted.vat_id, legal_registration_id=wanted.legal_registration_id,
            peppol_endpoint_scheme=wanted.peppol_scheme, peppol_endpoint_id=wanted.peppol_id,
        )
        if wanted.email or wanted.phone:
            customer.contacts.append(Contact(email=wanted.email, phone=wanted.phone,
                                             name=wanted.name, is_primary=True))
        self.session.add(customer)
        self.session.flush()
        record_event(self.session, "customer", f"{org.id}:{customer.number}", "customer.created",
                     {"source": doc.source, "file": doc.locator.file}, actor=self.actor)
        return customer

    def account(self, org: Organisation, customer: Customer,
                doc: ImportedDocument) -> Account | None:
        if not doc.account_number:
            return None
        key = (org.id, doc.account_number)
        if key not in self.accounts:
            found = self.session.scalars(sa.select(Account).where(
                Account.organisation_id == org.id, Account.number == doc.account_number)).first()
            if found is None:
                found = Account(organisation_id=org.id, number=doc.account_number,
                                customer=customer)
                self.session.add(found)
            self.accounts[key] = found
        account = self.accounts[key]
        if account.customer is not customer and account.customer_id != customer.id:
            self.fail(doc, "account", f"account {doc.account_number} belongs to another customer "
                      f"({account.customer.number}), not to {customer.number}")
            return None
        return account

    def fail(self, doc: ImportedDocument, path: str, message: str) -> None:
        self.problems.append(doc.locator.problem(path, message))


def import_documents(
    session: Session,
    documents: list[ImportedDocument],
    *,
    file: str,
    rules_dir: Path | None = None,
    store: DocumentStore | None = None,
    actor: str = "import",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Add the documents of one file to ``session``; raise ImportRejected if any is wrong.

    A document whose number the seller already used is ``unchanged`` when its
    content is the same and refused when it differs (issued invoices are never
    edited; a correction is a credit note). With a ``store``, documents with
    status issued are issued at once: their UBL is validated and frozen.
    """
    importer = _Importer(session, rules_dir, actor, store)
    result = ImportResult(file)
    seen: dict[tuple[int, str], ImportedDocument] = {}
    for doc in documents:
        _import_one(importer, doc, seen, result)
        if progress:
            progress(1)
    if importer.problems:
        raise ImportRejected(importer.problems)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise ImportRejected([Problem(file, "", "", "another import added some of these "
                                      "documents at the same moment; run the import again")]
                             ) from exc
    return result


def _import_one(importer: _Importer, doc: ImportedDocument,
                seen: dict[tuple[int, str], ImportedDocument], result: ImportResult) -> None:
    session = importer.session
    org = importer.organisation(doc)
    if org is None:
        return
    if (org.id, doc.number) in seen:
        importer.fail(doc, "number", f"{doc.number} appears twice in this file "
                      f"(also at {seen[(org.id, doc.number)].locator.document_label}); "
                      "each invoice number is used once")
        return
    seen[(org.id, doc.number)] = doc
    existing = session.scalars(sa.select(Invoice).where(
        Invoice.organisation_id == org.id, Invoice.number == doc.number)).first()
    if existing is not None:
        if existing.content_sha256 == doc.fingerprint:
            result.unchanged.append(doc.number)
        else:
            importer.fail(doc, "number", f"{doc.number} was imported before with different "
                          "content; an issued invoice is never changed, so correct it with a "
                          "credit note or give this document a new number")
        return
    customer = importer.customer(org, doc)
    if customer is None:
        return
    account = importer.account(org, customer, doc)
    computed = _computed_document(importer, doc, org, customer)
    if computed is None:
        return
    invoice = Invoice(
        organisation_id=org.id, customer=customer, account=account,
        status=InvoiceStatus(doc.status), payment_means_code=doc.payment_means_code,
        payment_reference=doc.payment_reference, source=doc.source,
        content_sha256=doc.fingerprint,
        issued_at=utcnow() if doc.status != InvoiceStatus.DRAFT else None,
    )
    fill_invoice(invoice, computed)
    if doc.tax_amount_in_tax_currency is not None:
        invoice.tax_amount_in_tax_currency = doc.tax_amount_in_tax_currency
    session.add(invoice)
    session.flush()
    record_event(session, "invoice", f"{org.id}:{invoice.number}", "invoice.imported",
                 {"source": doc.source, "file": doc.locator.file, "status": invoice.status.value,
                  "payable_amount": str(invoice.payable_amount), "currency": invoice.currency,
                  "content_sha256": invoice.content_sha256}, actor=importer.actor)
    if importer.store is not None and invoice.status is not InvoiceStatus.DRAFT:
        try:
            issue_invoice(session, invoice, store=importer.store, rules_dir=importer.rules_dir,
                          actor=importer.actor, ubl=doc.original_ubl)
        except IssuingRefused as refused:
            for problem in refused.problems:
                # Rule checks name a field of the document; the official validators an XPath.
                xpath = problem.location.startswith("/")
                importer.fail(doc, "" if xpath else problem.location,
                              f"cannot be issued: {problem.message} [{problem.rule}]"
                              + (f" at {problem.location}" if xpath else ""))
            return
    result.created.append(doc.number)


def _computed_document(importer: _Importer, doc: ImportedDocument, org: Organisation,
                       customer: Customer) -> einvoice.Document | None:
    """Build the EN 16931 document, check its rules and compute its amounts."""
    document = einvoice.Document(
        kind=doc.kind, number=doc.number, issue_date=doc.issue_date, due_date=doc.due_date,
        currency=doc.currency, tax_currency=doc.tax_currency,
        seller=seller_party(org), buyer=buyer_party(customer),
        buyer_reference=doc.buyer_reference, order_reference=doc.order_reference,
        preceding_invoices=[doc.preceding_invoice] if doc.preceding_invoice else [],
        notes=[doc.note] if doc.note else [], period_start=doc.period_start,
        period_end=doc.period_end, payment_terms=doc.payment_terms,
        allowances_charges=doc.allowances_charges, vat_exemptions=doc.vat_exemptions,
        lines=doc.lines, **specification(customer),
    )
    if _amounts_too_large(importer, doc):
        return None
    problems = [p for p in einvoice.check(document, importer.rules_dir)
                if not p.rule.startswith("PEPPOL")]  # Peppol's own rules apply when sending
    for problem in problems:
        importer.fail(doc, *_file_field_and_message(doc, problem))
    if problems:
        return None
    if doc.prepaid_amount is not None or doc.rounding_amount is not None:
        # compute() derives every total but keeps these two inputs from the given totals
        zero = Decimal("0.00")
        document.totals = einvoice.Totals(
            line_extension=zero, tax_exclusive=zero, tax_total=zero, tax_inclusive=zero,
            payable=zero, prepaid=doc.prepaid_amount, rounding=doc.rounding_amount)
    try:
        computed = einvoice.compute(document, rules_dir=importer.rules_dir)
    except einvoice.InvoiceRuleError as exc:  # a Peppol rule the arithmetic needs (e.g. R121)
        importer.fail(doc, *_file_field_and_message(doc, exc))
        return None
    consistent = True
    for label, attribute, stated in doc.expected_amounts:
        actual = getattr(computed.totals, attribute) or Decimal("0.00")
        if actual != stated:
            consistent = False
            importer.fail(doc, label, f"states {stated} but the lines add up to {actual}; "
                          "check the lines, allowances and VAT rates")
    for attribute in ("line_extension", "tax_exclusive", "tax_inclusive", "payable"):
        if abs(getattr(computed.totals, attribute)) >= LARGEST_AMOUNT:
            consistent = False
            importer.fail(doc, "lines", f"the {attribute.replace('_', ' ')} amount "
                          f"{getattr(computed.totals, attribute)} is too large to store")
    return computed if consistent else None


# Amounts are stored with 16 digits before the point (distribution.sqltypes.Money).
LARGEST_AMOUNT = Decimal(10) ** 16


def _amounts_too_large(importer: _Importer, doc: ImportedDocument) -> bool:
    """Refuse lines whose amount cannot be stored, before einvoice computes with them."""
    too_large = False
    for index, line in enumerate(doc.lines):
        amount = abs(line.quantity * line.net_price / (line.base_quantity or 1))
        if amount >= LARGEST_AMOUNT:
            too_large = True
            importer.fail(doc, f"lines[{index}].quantity", f"quantity × net_price is {amount:f}, "
                          "too large to store; the largest line amount is 9999999999999999.99")
    return too_large


def _file_field_and_message(doc: ImportedDocument,
                            problem: einvoice.InvoiceRuleError) -> tuple[str, str]:
    """Where a rule problem points in the file, and its message with the rule ID.

    einvoice names the buyer ``buyer`` and an exemption reason
    ``vat_exemptions['E']``; the import formats say ``customer`` and give the
    reason on a line, so the problem is put on the first line of that category.
    """
    field, message = problem.field, f"{problem.message} [{problem.rule}]"
    if field.startswith("buyer."):  # the import formats call the buyer "customer"
        field = "customer." + field.removeprefix("buyer.")
    if field.startswith("vat_exemptions["):
        category = field[len("vat_exemptions[") :].strip("[]'\"")
        index = next((i for i, line in enumerate(doc.lines) if line.vat_category == category), 0)
        field = f"lines[{index}].vat_exemption_reason"
        if problem.rule.endswith("-10") and "needs" in problem.message:
            message = (f"VAT category {category} needs an exemption reason; give "
                       "vat_exemption_reason (a text) or vat_exemption_reason_code (a VATEX "
                       f"code such as VATEX-EU-132) [{problem.rule}]")
    return field, message
