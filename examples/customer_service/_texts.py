"""What the example's customers write: the raw material `make_data.py` draws tickets from.

Each text is labelled with what a careful person would make of it (`kind`), so the rules
can be measured against it; the labels never reach `tickets.jsonl`.
"""

from __future__ import annotations

# The first tickets of the file, written out in full: one or more of every kind, so that
# `-i limit=12` exercises every path. `{cN}` is customer number N of the CRM.
FIRST = (
    ("faq", "c11", "Delivery time",
     "Hi, how long does standard delivery take? I'd like the new bedside lamp before the "
     "20th.\n\nThanks, Priya"),
    ("account_change", "c2", "New email address",
     "Hello, please change the email address on my account {c2} to "
     "maria.lopez.home@fastmail.com. I won't be using this one after next week.\n\nMaria"),
    ("complaint", "c14", "DAMAGED AGAIN",
     "This is the THIRD time my order has arrived damaged. I am DONE with Larkspur. Refund me "
     "now or I'm disputing the charge with my bank!!"),
    ("faq", "c17", "Can't reset password",
     "I forgot my password and the reset link never arrived. How do I reset it?"),
    ("account_change", "c5", "Upgrade",
     "Please upgrade customer {c5} to the Pro plan from today.\n\nThank you,\nTom"),
    ("faq", "c20", "Return policy",
     "What's your return policy? I bought cushions 10 days ago and they don't match my sofa."),
    ("ambiguous", "c23", "Help", "Hi, I have a question about my account."),
    ("account_change", "c8", "We moved",
     "We moved! Please update the delivery address for customer {c8} to "
     "1187 Linden Avenue, Apt 3, Madison, WI 53703."),
    ("faq", "c26", "Charge on my statement",
     "There's a charge from LARKSPUR*MEMBER on my card statement. What is it for?"),
    ("complex", "c29", "Data protection request",
     "Under the GDPR I request a copy of all personal data you hold about me, and the "
     "deletion of my account afterwards. Please confirm the timeline and which of my "
     "details you have shared with third parties."),
    ("faq", "c32", "Tracking number", "Where can I find the tracking number for my order?"),
    ("faq", "c35", "Refund",
     "You received my return on Monday. When will the refund show on my card?"),
)

FAQ = (
    ("Express delivery", "If I choose express delivery, how quickly will it get to me?"),
    ("order dispatch", "do you ship orders the same day? I ordered at 4pm today"),
    ("When will my order arrive?",
     "I ordered this morning. When does it leave the warehouse and how many days until it "
     "arrives?"),
    ("Shipping cost", "How much is shipping? My basket is $38."),
    ("Free shipping?", "Is there a minimum order for free delivery?"),
    ("Express fee", "What does express shipping cost, and is it free for Pro members?"),
    ("Shipping to Canada", "Do you deliver to Toronto, Canada? How long does it take?"),
    ("UK delivery and customs",
     "I live in Manchester. Will I have to pay import duties when my order arrives?"),
    ("Australia", "can you ship to australia?"),
    ("Where is my parcel",
     "My order shipped yesterday but the tracking link shows nothing yet. Is that normal?"),
    ("order status", "How do I check the status of my order?"),
    ("Cancel my order",
     "I placed an order 20 minutes ago by mistake. How can I cancel it?"),
    ("Ordered the wrong thing",
     "I made a mistake and ordered the wrong item. Can I still edit the order?"),
    ("How do I return something?",
     "I'd like to send back a rug I bought two weeks ago. How do I get a return label?"),
    ("Returning an opened item",
     "Can I return a vase if I already took it out of the box? It's unused."),
    ("Refund timing", "I sent my return back last week. How long until I get my refund?"),
    ("Delivery fee refund", "Do you refund the delivery fee when I return something?"),
    ("Exchange for a different colour", "Can I exchange the blue throw for the green one?"),
    ("Different size", "The duvet cover is too small. Can I swap it for a different size?"),
    ("Arrived broken", "My mug set arrived with one mug cracked. What should I do?"),
    ("Missing part",
     "The shelf I received is missing a part (one bracket). Can you send a replacement?"),
    ("Payment options", "Do you take PayPal or Apple Pay?"),
    ("Cash on delivery", "Is cash on delivery possible?"),
    ("Invoice needed",
     "I need an invoice with VAT for my company's expenses. Where can I download it?"),
    ("Receipt", "how do i get a receipt for my last order"),
    ("Billing date", "On which day of the month is my Plus membership billed?"),
    ("Plans", "What's the difference between the Plus and Pro membership?"),
    ("Pro price", "How much does the Pro membership cost per month?"),
    ("Cancel membership",
     "How do I cancel my Plus membership? Do I get a refund for the rest of the month?"),
    ("Stop subscription", "Where do I cancel my membership subscription?"),
    ("Forgot password", "I forgot my password. How can I reset it?"),
    ("can't log in",
     "I can't log in to my account, it says my password is wrong. how do i reset it"),
    ("Account locked",
     "My account says it is locked after too many attempts. How long until I can sign in?"),
    ("Locked out", "I'm locked out after typing my password wrong several times."),
    ("Lost phone",
     "I lost my phone and can't get the verification code to sign in. What can I do?"),
    ("Two-factor", "How do I turn on two-step verification?"),
    ("Promo code not working",
     "My promo code doesn't work at checkout. I already have another code applied."),
    ("Discount after ordering",
     "I forgot to enter my discount code. Can you apply it to the order I placed yesterday?"),
    ("Gift card and promo", "Can I use a promo code when buying a gift card?"),
    ("Customs fees", "Are customs duties included in the price for orders to Germany?"),
    ("Tracking", "where is my package? how can i track it"),
    ("Damaged lampshade",
     "The lampshade arrived dented. Do I need to send it back to get a new one?"),
    ("Sign in", "How do I reset my password? I never got an email."),
)

EMAIL_CHANGES = (
    ("Email change",
     "Hi, please change the email address on my account {id} to {new}.\n\nThanks, {first}"),
    ("Update email", "Could you update my email? Customer number {id}. The new address is {new}"),
    ("New email",
     "I have a new email address: {new}. My customer ID is {id}, please update it."),
    ("Replace email",
     "Please replace the email on account {id} with {new} - I no longer use this one."),
    ("email", "hello, new email for {id}: {new}"),
    ("Contact email",
     "{first} {last} here (customer {id}). Please switch my contact email to {new}."),
    ("Change of email", "Please change my email to {new}. Customer ID {id}.\n\n{first}"),
)
ADDRESS_CHANGES = (
    ("Address change",
     "Can you change the address on my account {id}? New address: {address}"),
    ("New address",
     "My customer number is {id}. Please change my shipping address to {address}."),
    ("Moving", "We're moving next week. Please update my address to {address}. Account {id}."),
    ("Update address", "Hi, please update the delivery address for {id} to {address}.\n{first}"),
    ("Address", "new address for customer {id}: {address}"),
    ("Change of address",
     "Hello, I have moved. Could you change the address on customer {id} to {address}?"),
    ("Shipping address",
     "Please set the shipping address on my account ({id}) to {address}. Thank you!"),
)
PLAN_CHANGES = (
    ("Upgrade", "Please upgrade my account {id} to the {plan} plan."),
    ("Plan change", "I'd like to switch to the {plan} plan, customer number {id}."),
    ("Membership", "Can you change my membership to {plan}? My customer ID is {id}."),
    ("Change plan", "change plan to {plan} please - {id}"),
    ("Downgrade",
     "Money is tight at the moment, please move account {id} to the {plan} plan.\n{first}"),
    ("Plan", "Hi! Customer {id} here. Please put me on the {plan} plan from now on."),
    ("Switch plan", "Please switch customer {id} to {plan}. Thanks, {first}"),
)
# Account changes that must not go through unattended.
UNSAFE_CHANGES = (
    ("no_id", "Email", "Please change my email to {new}, thanks."),
    ("no_id", "New address",
     "I moved house, my new address is {address}. Please update it on my account."),
    ("unknown_id", "Email change", "Please change the email on account C-19999 to {new}."),
    ("wrong_sender", "Change email",
     "Please change the email address on account {id} to {new}. I'm writing from my "
     "work address."),
)

COMPLAINTS = (
    ("Still nothing",
     "Absolutely unacceptable. I ordered two weeks ago, paid for express, and still nothing. "
     "Nobody answers the phone. Where is my money?"),
    ("Charged twice",
     "You charged my card twice for the same order and your chat bot is useless. Fix this "
     "TODAY."),
    ("No refund",
     "Worst customer service I have ever experienced. I returned the rug a month ago and still "
     "no refund. I'm reporting you to the Better Business Bureau."),
    ("Wrong colour AND torn",
     "I am furious. The sofa cover you sent is the wrong colour AND torn, and your return "
     "label doesn't work!!!"),
    ("Ruined",
     "Your courier left my parcel in the rain and everything is ruined. This is ridiculous, "
     "I want compensation."),
    ("Fraud",
     "I cancelled my Pro membership in March and you've kept charging me every month since. "
     "This is fraud. I want all of it back."),
    ("Third email",
     "Third email, no reply. Stop ignoring me. Order LH-55821 never arrived."),
    ("Fire hazard",
     "The lamp you sold me sparked and nearly started a fire. I'm speaking to a lawyer."),
    ("STOP EMAILING ME",
     "DO NOT send me any more marketing emails. I've unsubscribed five times. This is "
     "harassment."),
    ("On hold", "I've been waiting 40 minutes on hold. Pathetic. Cancel everything and refund me."),
    ("Price drop",
     "Your promo code didn't work, I paid full price, and now the item is on sale for half. "
     "Disgusting way to treat loyal customers."),
    ("Wrong address",
     "Delivered to the wrong address and the driver lied about delivering it. I'm sick of "
     "this company."),
    ("Locked before a birthday",
     "Why was my account locked?? I have an order to place for a birthday TOMORROW. This is a "
     "joke."),
    ("No call back", "I was promised a call back three days ago. Nobody called. Terrible service."),
    ("Scam",
     "The 'free' return cost me $12 because the label was invalid. Refund it immediately, "
     "this is a scam."),
    ("Fed up",
     "Fed up. Half of my dinner set is missing and the replacement you sent is also broken."),
)

COMPLEX = (
    ("Café order",
     "Hello, I run a small café and would like to order 40 chairs and 10 tables. Can you offer "
     "a business discount, invoice payment terms, and delivery with assembly to our premises "
     "in Portland?"),
    ("Split order",
     "I ordered three items in one order: the lamp arrived, the rug was backordered, and the "
     "mirror came damaged. I'd like to keep the lamp, get the mirror replaced and cancel the "
     "rug, but I paid with a gift card and a Visa card. How will the refund be split?"),
    ("Closing my mother's account",
     "My late mother had an account with you ({id}). How do we close it and transfer her "
     "remaining gift card balance to me?"),
    ("Sales tax",
     "I was charged sales tax on an order shipped to Oregon, which has no sales tax. Could you "
     "look into it and refund the tax? Order LH-48213."),
    ("Wedding registry",
     "We're planning a wedding registry with around 120 items. Do you support registries, "
     "group gifting and delayed delivery until after the event?"),
    ("Someone else's order",
     "I received someone else's order in my parcel, including their invoice with their "
     "address. I'd like to return it, and I'm worried my own details were sent to someone "
     "else too."),
    ("Memberships for our team",
     "Our company wants to give Pro memberships to 25 employees. Can we pay for them centrally "
     "and manage them from one account?"),
    ("Several changes",
     "After my divorce I need to change the name on the account, the email and the billing "
     "address, and I want the old email removed from every marketing list. Customer {id}."),
)

AMBIGUOUS = (
    ("Order", "Please call me back about my order. 555-0142"),
    ("Re: your email", "Yes, that's fine."),
    ("Question", "Is this still available?"),
    ("Hello", "Can someone help me please"),
    ("Autumn collection",
     "Love the new autumn collection! Will there be more colours of the wool throw?"),
    ("Account", "Something is off with my account, the numbers look wrong."),
    ("urgent", "Need this sorted asap"),
    ("Order LH-60213", "See attached photo."),
    ("", "it doesn't work"),
)

GREETINGS = ("", "", "Hi,\n\n", "Hello,\n\n", "Hi there,\n\n", "Good morning,\n\n")
SIGN_OFFS = ("", "", "\n\nThanks, {first}", "\n\nBest,\n{first}", "\n\nCheers", "\n\nThank you!")
