""""Review & pay": one invoice opened by a link, paid with a provider, without a password."""

from flask import Blueprint, Flask

bp = Blueprint("pay", __name__, url_prefix="/pay")

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def init_app(app: Flask) -> None:
    """Register the blueprint, its task (the recovery email) and the CSRF exemption."""
    from portal.extensions import csrf
    from portal.pay import links, routes, tasks
    from portal.payment_providers import stripe_provider

    csrf.exempt(routes.stripe_webhook)  # Stripe signs it instead (see routes.stripe_webhook)
    tasks.init_app(app)
    app.add_template_filter(links.public_id, "pay_id")  # the invoice page's Pay button
    app.register_blueprint(bp)
    from portal.pay.cli import payments_group

    app.cli.add_command(payments_group)
    if stripe_provider(app.config["HERALD"]) is not None:
        from portal.security_headers import allow_source

        # The pay form's POST answers with a redirect to Stripe; form-action covers it.
        allow_source(app, "form-action", STRIPE_CHECKOUT_ORIGIN)
