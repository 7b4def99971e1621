# Stripe's official library (PyPI stripe) on Basalt's webhook signatures:
#   sign SECRET TIMESTAMP   < payload  -> prints a Stripe-Signature header
#   verify SECRET HEADER    < payload  -> prints {"verified": bool, ...}
# Used by crates/basalt/tests/it/shop/payments.rs.
import json
import sys

import stripe
from stripe import Webhook, WebhookSignature

mode = sys.argv[1]
payload = sys.stdin.buffer.read().decode("utf-8")
if mode == "sign":
    secret, timestamp = sys.argv[2], int(sys.argv[3])
    print(WebhookSignature.generate_signature_header(payload, secret, timestamp))
elif mode == "verify":
    secret, header = sys.argv[2], sys.argv[3]
    try:
        event = Webhook.construct_event(payload, header, secret)
        print(json.dumps({"verified": True, "id": event.id, "type": event.type}))
    except stripe.SignatureVerificationError as error:
        print(json.dumps({"verified": False, "error": str(error)}))
else:
    sys.exit(f"unknown mode {mode}")
